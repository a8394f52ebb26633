"""export_onnx: write a model as an ONNX file that onnxruntime runs (docs/method.md §6).

Formats, one target module each: ``onnx-int8`` (onnxruntime's 8-bit kernels, int8.py),
``onnx-integer-float`` (the same integers carried in float32, integer_float.py) and
``onnx-float`` (the float network, float_network.py).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

from f8lab.export.integerize import integerize
from f8lab.export.layer_table import layer_table
from f8lab.export.onnx import float_network, int8, integer_float
from f8lab.export.onnx.graph import Graph, trace
from f8lab.models import load_float_state_dict
from f8lab.models.network import Network
from f8lab.models.registry import arch_of, build_arch, quant_of

FORMATS = ("onnx-int8", "onnx-integer-float", "onnx-float")
WEIGHT_FORMS = int8.WEIGHT_FORMS
OPSET = 17


def float_network_of(model: nn.Module) -> nn.Module:
    """The float network a fixed-point model was built from, with its float weights."""
    float_model = build_arch(arch_of(model))
    state = {k: v for k, v in model.state_dict().items() if k in float_model.state_dict()}
    load_float_state_dict(float_model, state)
    return float_model.eval()


def export_onnx(
    model: nn.Module,
    path: str | Path,
    format: str = "onnx-int8",
    example_input: torch.Tensor | None = None,
    metadata: dict | None = None,
    weights: str = "portable",
) -> Path:
    """Write ``model`` as an ONNX file that onnxruntime runs.

    Args:
        path: the file to write.
        format: "onnx-int8", "onnx-integer-float" or "onnx-float".
        model: a calibrated fixed-point model in eval mode: one of f8lab's architectures, or
            any model built from a fixed-point LayerKit (for ``onnx-float``, a float model
            or one of f8lab's fixed-point architectures, whose float network is exported).
        example_input: an input of the size the file will see (it fixes the classifier's
            pooling size); default for f8lab's architectures: the stem's usual size;
            required for any other model.
        metadata: extra ``metadata_props`` entries (strings).
        weights: onnx-int8's kernel weights. "portable" (default): exact on every CPU,
            int8 where no pair of products can pass int16, else uint8 with zero point 128;
            "s8": int8 everywhere, faster, exact only where onnxruntime's uint8 x int8
            kernels accumulate in 32 bits (x86-64 with AVX512-VNNI or AVX-VNNI, ARM64);
            "u8": uint8 everywhere. The other formats have no 8-bit kernels.

    Returns:
        The path. The graph's input is ``input`` (N, C, H, W) float32 with a dynamic batch
        axis, in the model's input convention; its output ``logits`` (N, classes): for the
        integer formats, integers with the true logits = logits / 2**output_fraclen
        (recorded in metadata_props, with the input convention and the layer formats).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    targets = {
        "onnx-int8": int8.emitters(weights),
        "onnx-integer-float": integer_float.EMITTERS,
        "onnx-float": float_network.EMITTERS,
    }
    quant = quant_of(model)
    if isinstance(model, Network):
        name, arch, size = model.arch.name, dataclasses.asdict(model.arch), model.arch.image_size
    elif example_input is None:
        raise ValueError(
            f"export_onnx needs example_input for a {type(model).__name__}: an "
            "input of the size the file will see"
        )
    else:
        name, arch, size = type(model).__name__, None, example_input.shape[-1]
    channels = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    classes = [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features
    props = {
        "format": format,
        "arch": json.dumps(arch),
        "input_convention": "imagenet-normalized"
        if quant is not None and quant.signed_input
        else "pixels/256 (round(255 x) / 256)",
    }
    graph = Graph()
    if format == "onnx-float":
        body = copy.deepcopy(model if quant is None else float_network_of(model)).eval()
        out = trace(body, targets[format], graph)
        props["output_fraclen"] = "0"
        out_type = TensorProto.FLOAT
    else:
        if quant is None:
            raise ValueError(f"{format} needs a fixed-point model; a float model exports as onnx-float")
        if format == "onnx-int8" and quant.wl > 8:
            raise ValueError(
                f"onnx-int8 carries 8-bit tensors; a {quant.wl}-bit model exports as onnx-integer-float"
            )
        integer = integerize(model, example_input)
        out = trace(integer.body, targets[format], graph)
        props["output_fraclen"] = str(integer.output_fraclen)
        props["layers"] = layer_table(model).to_json(orient="records")
        out_type = TensorProto.DOUBLE if format == "onnx-int8" else TensorProto.FLOAT
        if format == "onnx-int8":
            props["weights"] = weights
    graph.nodes.append(helper.make_node("Identity", [out.name], ["logits"]))
    if example_input is not None:
        size = example_input.shape[-1]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", channels, size, size])]
    outputs = [helper.make_tensor_value_info("logits", out_type, ["batch", classes])]
    onnx_graph = helper.make_graph(graph.nodes, f"f8lab_{name}", inputs, outputs, graph.initializers)
    opsets = [helper.make_opsetid("", OPSET)]
    if any(node.domain == "com.microsoft" for node in graph.nodes):
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    onnx_model = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="f8lab")
    onnx_model.ir_version = 8
    helper.set_model_props(onnx_model, {**props, **(metadata or {})})
    onnx_model.graph.doc_string = (
        f"f8lab {format} export of {name}: input 'input' "
        f"(N, C, H, W) float32, output 'logits'; see metadata_props"
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model, path)
    return path
