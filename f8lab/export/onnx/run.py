"""OnnxModel: an exported file run by onnxruntime, usable where a model is (``model(x)``)."""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper, numpy_helper


@functools.cache
def int8_weights_saturate() -> bool:
    """True where onnxruntime's uint8 x int8 kernels add pairs of products in int16 with
    saturation (x86-64 without VNNI: vpmaddubsw), measured here: one MatMulInteger of
    255s by 127s, whose every pair of products (64,770) passes 32,767."""
    a = np.full((64, 256), 255, np.uint8)
    b = np.full((256, 64), 127, np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, None)],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
        [numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return not np.all(session.run(None, {"a": a})[0] == 255 * 127 * 256)


def ort_session(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session for an ONNX file; ``threads`` intra-op threads (default: onnxruntime's).

    An f8lab ``onnx-int8`` file has no QDQ groups for onnxruntime to fuse (its 8-bit
    convolutions are QLinearConv already; the DequantizeLinear before a float Conv is there
    for the exact residual add), so the session folds the int8 weights' DequantizeLinear
    into float constants (``session.disable_quant_qdq``), which lets onnxruntime pre-pack
    them. Other files run with onnxruntime's defaults.
    """
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file {path} does not exist")
    model = path.read_bytes()  # read once: for the metadata and for the session
    try:
        props = {p.key: p.value for p in onnx.load_from_string(model).metadata_props}
    except DecodeError:
        raise ValueError(
            f"{path} is not an ONNX model (it does not decode); write one with `f8lab export`"
        ) from None
    if props.get("format") == "onnx-int8":
        options.add_session_config_entry("session.disable_quant_qdq", "1")
        if props.get("weights", "s8") == "s8" and int8_weights_saturate():
            warnings.warn(
                f"{path} has int8 weights (weights='s8'), and onnxruntime's uint8 x "
                "int8 kernels on this CPU (x86-64 without VNNI) saturate pairs of "
                "products: its outputs may differ from the integer model; export "
                "with the default weights='portable' for a file exact on every CPU",
                stacklevel=2,
            )
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """Runs an f8lab ONNX file in onnxruntime's CPU kernels.

    ``model(x)`` returns the graph's ``logits`` as a tensor (integers for the integer
    formats; ``true logits = logits / 2**output_fraclen``); ``metadata`` holds the file's
    metadata_props.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.session = ort_session(path, threads)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.output_fraclen = int(self.metadata.get("output_fraclen", 0))
        self.arch = json.loads(self.metadata["arch"]) if "arch" in self.metadata else None

    def eval(self) -> OnnxModel:
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(["logits"], {"input": x.detach().cpu().numpy().astype(np.float32)})[0]
        return torch.from_numpy(out)
