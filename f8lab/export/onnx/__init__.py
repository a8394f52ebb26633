"""ONNX files of f8lab models: the writer (export_onnx) with one module per target, the
onnxruntime runner (OnnxModel) and the speed helpers."""

from f8lab.export.onnx.run import OnnxModel
from f8lab.export.onnx.writer import FORMATS, WEIGHT_FORMS, export_onnx

__all__ = ["FORMATS", "WEIGHT_FORMS", "OnnxModel", "export_onnx"]
