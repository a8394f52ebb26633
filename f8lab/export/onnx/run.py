"""OnnxModel: an exported file run by onnxruntime, usable where a model is (``model(x)``)."""

from __future__ import annotations

import json
import platform
import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from google.protobuf.message import DecodeError


def saturating_int8_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on an x86-64 CPU without VNNI (AVX512-VNNI or AVX-VNNI): there onnxruntime's
    uint8 x int8 kernels add pairs of products in 16 bits with saturation (vpmaddubsw), so
    a pair above 32767 (say 255 * 127 twice) is clipped. Unknown CPUs count as exact."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return "flags" in flags and not re.search(r"\b(avx512_vnni|avx_vnni)\b", flags)


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
        raise ValueError(f"{path} is not an ONNX model (it does not decode); write one "
                         "with `f8lab export`") from None
    if props.get("format") == "onnx-int8":
        options.add_session_config_entry("session.disable_quant_qdq", "1")
        if saturating_int8_cpu():
            warnings.warn(f"{path}: this x86-64 CPU has no VNNI, so onnxruntime's 8-bit "
                          "convolutions may saturate a pair of products and differ from the "
                          "integer model in rare outputs; for bit-exact results here, export "
                          "onnx-integer-float", stacklevel=2)
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
