"""OnnxModel: an exported file run by onnxruntime, usable where a model is (``model(x)``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch


class OnnxModel:
    """Runs an f8lab ONNX file in onnxruntime's CPU kernels.

    ``model(x)`` returns the graph's ``logits`` as a tensor (integers for the integer
    formats; ``true logits = logits / 2**output_fraclen``); ``metadata`` holds the file's
    metadata_props.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.output_fraclen = int(self.metadata.get("output_fraclen", 0))
        self.arch = json.loads(self.metadata["arch"]) if "arch" in self.metadata else None

    def eval(self) -> "OnnxModel":
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(["logits"], {"input": x.detach().cpu().numpy().astype(np.float32)})[0]
        return torch.from_numpy(out)
