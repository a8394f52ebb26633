"""describe(model): every quantized tensor of a fixed-point model and its format."""

from __future__ import annotations

import math

import pandas as pd
from torch import nn

from f8lab.nn import ActQuant, FixConv2d, FixLinear

COLUMNS = ["layer", "tensor", "wl", "fl", "signed", "alpha", "master", "quantizer"]


def _fraclen(values) -> int | list[int]:
    values = values.tolist()
    return values if isinstance(values, list) else int(values)


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
    for name, module in model.named_modules():
        if not isinstance(module, (FixConv2d, FixLinear)):
            continue
        quant: ActQuant = module._input_quant
        if quant is None:
            raise RuntimeError(f"layer {name} is not wired")
        alpha = quant.clip_level().item() if quant.clipping else math.nan
        rows.append(dict(layer=name, tensor="input", wl=quant.wl, fl=quant.ema.rounded(),
                         signed=quant.signed, alpha=alpha,
                         master=names[quant.master] if quant.clipping else None,
                         quantizer=names[quant]))
        rows.append(dict(layer=name, tensor="weight", wl=module.weight_quant.wl,
                         fl=_fraclen(module.weight_quant.fraclen), signed=True,
                         alpha=math.nan, master=None, quantizer=None))
    if not rows:
        raise ValueError("describe takes a fixed-point model (build_model(..., quant=QuantConfig()))")
    return pd.DataFrame(rows, columns=COLUMNS)
