"""Integer export: the integer-only model, its reference executor, ONNX files."""

from f8lab.export.integer_ops import Fixed
from f8lab.export.integerize import IntegerModel, integerize
from f8lab.export.layer_table import layer_table
from f8lab.export.onnx import FORMATS, WEIGHT_FORMS, OnnxModel, export_onnx

__all__ = [
    "FORMATS",
    "WEIGHT_FORMS",
    "Fixed",
    "IntegerModel",
    "OnnxModel",
    "export_onnx",
    "integerize",
    "layer_table",
]
