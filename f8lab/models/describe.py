"""describe(model): every quantized tensor of a fixed-point model and its format."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pandas as pd
import torch
from torch import nn

from f8lab.nn import ActQuant, FixConv2d, FixLinear

COLUMNS = ["layer", "tensor", "wl", "fl", "signed", "alpha", "master", "quantizer"]


def fraclens(values: torch.Tensor) -> int | list[int]:
    """A format tensor as a person reads it: an int, or a list when per channel."""
    listed = values.tolist()
    return listed if isinstance(listed, list) else int(listed)


def clip_level(quantizer: ActQuant) -> float:
    """Where a quantizer clips, in the float model's units (NaN without clipping)."""
    return quantizer.clip_level().item() if quantizer.clipping else math.nan


def quantized_layers(model: nn.Module) -> Iterator[tuple[str, FixConv2d | FixLinear, ActQuant]]:
    """Every convolution and classifier of a fixed-point model, with the quantizer of the
    tensor it reads: the one loop that describe, layer_table and the value studies share."""
    found = False
    for name, module in model.named_modules():
        if isinstance(module, (FixConv2d, FixLinear)):
            found = True
            yield name, module, module.input_quant
    if not found:
        raise ValueError("this takes a fixed-point model (build_model(..., quant=QuantConfig()))")


def describe(model: nn.Module) -> pd.DataFrame:
    """A row per quantized tensor: ``layer, tensor ("weight"|"input"), wl, fl, signed, alpha,
    master, quantizer``.

    ``fl`` is the evaluation format (the rounded EMA buffer for inputs, the last
    fractional length used for weights; a list when per channel); ``alpha`` is the
    clipping level in use (NaN without clipping); ``master`` names the quantizer that owns
    it; ``quantizer`` names the input's own quantizer, which keeps the input's private FL.
    """
    names = {module: name for name, module in model.named_modules()}
    rows = []
    for name, module, quantizer in quantized_layers(model):
        rows.append(
            dict(
                layer=name,
                tensor="input",
                wl=quantizer.wl,
                fl=int(quantizer.running_fraclen()),
                signed=quantizer.signed,
                alpha=clip_level(quantizer),
                master=names[quantizer.master] if quantizer.clipping else None,
                quantizer=names[quantizer],
            )
        )
        rows.append(
            dict(
                layer=name,
                tensor="weight",
                wl=module.weight_quant.wl,
                fl=fraclens(module.weight_quant.fraclen),
                signed=True,
                alpha=math.nan,
                master=None,
                quantizer=None,
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)
