"""layer_table(model): the integer formats of every layer, as the integer model runs them."""

from __future__ import annotations

import pandas as pd
from torch import nn

from f8lab.models.describe import clip_level, fraclens, quantized_layers
from f8lab.nn import FixLinear

COLUMNS = ["layer", "op", "fl_in", "fl_w", "fl_acc", "fl_out", "shift", "alpha"]


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
    for name, module, quantizer in quantized_layers(model):
        fl_in = int(quantizer.running_fraclen())
        fl_w = module.weight_quant.fraclen
        fl_acc = fl_in + fl_w
        if isinstance(module, FixLinear):
            op, fl_out = "linear", int(fl_acc.max())
        else:
            assert module.output_quant is not None  # a conv of f8lab's architectures writes a tensor
            op = "depthwise conv" if module.groups > 1 else "conv"
            fl_out = int(module.output_quant.running_fraclen())
        rows.append(
            dict(
                layer=name,
                op=op,
                fl_in=fl_in,
                fl_w=fraclens(fl_w),
                fl_acc=fraclens(fl_acc),
                fl_out=fl_out,
                shift=fraclens(fl_acc - fl_out),
                alpha=clip_level(quantizer),
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)
