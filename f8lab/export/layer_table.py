"""layer_table(model): the integer formats of every layer, as the integer model runs them."""

from __future__ import annotations

import math

import pandas as pd
from torch import nn

from f8lab.nn import FixConv2d, FixLinear

COLUMNS = ["layer", "op", "fl_in", "fl_w", "fl_acc", "fl_out", "shift", "alpha"]


def _fraclens(values) -> int | list[int]:
    values = values.tolist()
    return values if isinstance(values, list) else int(values)


def layer_table(model: nn.Module) -> pd.DataFrame:
    """A row per conv or linear layer of a calibrated fixed-point model in eval mode.

    Columns: ``layer``, ``op`` (conv, depthwise conv, linear), ``fl_in`` (input FL), ``fl_w``
    (weight FL, a list when per channel), ``fl_acc`` (the int32 accumulator's FL,
    ``fl_in + fl_w``), ``fl_out`` (the FL of the tensor it writes; for the classifier, the
    logits' FL), ``shift`` (``fl_acc - fl_out``: the requantization's right shift, a list when
    per channel) and ``alpha`` (the input's clipping level, NaN without clipping). The weight
    FLs are those of the last forward pass: run one batch in eval mode first.
    """
    rows = []
    for name, module in model.named_modules():
        if not isinstance(module, (FixConv2d, FixLinear)):
            continue
        quant = module._input_quant
        fl_in = quant.ema.rounded()
        fl_w = module.weight_quant.fraclen
        fl_acc = fl_in + fl_w
        if isinstance(module, FixLinear):
            op, fl_out = "linear", int(fl_acc.max())
        else:
            op = "depthwise conv" if module.groups > 1 else "conv"
            fl_out = module._output_quant.ema.rounded()
        alpha = quant.clip_level().item() if quant.clipping else math.nan
        rows.append(dict(layer=name, op=op, fl_in=fl_in, fl_w=_fraclens(fl_w),
                         fl_acc=_fraclens(fl_acc), fl_out=fl_out,
                         shift=_fraclens(fl_acc - fl_out), alpha=alpha))
    if not rows:
        raise ValueError("layer_table takes a fixed-point model")
    return pd.DataFrame(rows, columns=COLUMNS)
