"""WeightQuant: quantizes an effective (BN-folded, rescaled) weight with an FL chosen on the fly."""

from __future__ import annotations

import torch
from torch import nn

from f8lab.quant import QuantConfig, choose_fraclen, fix_quant


class WeightQuant(nn.Module):
    """Signed quantizer of a layer's effective weight (METHOD.md §3).

    The fractional length is recomputed at every forward pass from the weight it
    quantizes (formula, grid search, or fixed), per layer or per output channel; the last
    one used is kept in the buffer ``fraclen``.
    """

    def __init__(self, config: QuantConfig, out_channels: int) -> None:
        super().__init__()
        self.config, self.wl = config, config.bits
        self.dim = 0 if config.per_channel else None
        shape = (out_channels,) if config.per_channel else ()
        self.register_buffer("fraclen", torch.full(shape, config.weight_fraclen, dtype=torch.long))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.config.floating:
            return weight
        if self.config.fraclen == "fixed":
            fl = self.fraclen
        else:
            fl = choose_fraclen(weight, self.wl, True, self.config.fraclen, self.dim,
                                self.config.coefficients)
            self.fraclen.copy_(torch.as_tensor(fl))
        return fix_quant(weight, self.wl, fl, True, self.dim)

    def quantize_bias(self, bias: torch.Tensor, input_fraclen: int) -> torch.Tensor:
        """Round the bias to the accumulator's grid ``2**-(fl_x + fl_w)`` (an int32 in the
        integer model), with a straight-through gradient."""
        if self.config.floating:
            return bias
        step = torch.exp2(-(input_fraclen + self.fraclen).to(bias.dtype))
        return bias + (torch.round(bias / step) * step - bias).detach()
