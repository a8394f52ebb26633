"""WeightQuant: quantizes an effective (BN-folded, rescaled) weight with an FL chosen on the fly."""

from __future__ import annotations

import torch
from torch import nn

from f8lab.quant import QuantConfig, int_range, quantize_on_grid, select_fraclen


class WeightQuant(nn.Module):
    """Signed quantizer of a layer's effective weight (docs/method.md §3).

    The fractional length is recomputed at every forward pass from the weight it
    quantizes (formula, grid search, or fixed), per layer or per output channel; the last
    one used is kept in the buffer ``fraclen``.
    """

    def __init__(self, config: QuantConfig, out_channels: int) -> None:
        super().__init__()
        self.config, self.wl = config, config.wl
        self.dim = 0 if config.per_channel else None
        shape = (out_channels,) if config.per_channel else ()
        assert config.weight_fraclen is not None  # QuantConfig fills it in
        self.fraclen: torch.Tensor
        self.finite: torch.Tensor
        self.register_buffer("fraclen", torch.full(shape, config.weight_fraclen, dtype=torch.long))
        # whether every weight since the last check had finite values (not saved)
        self.register_buffer("finite", torch.tensor(True), persistent=False)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.config.floating:
            return weight
        if self.config.fraclen_method == "fixed":
            fl = self.fraclen.to(weight.dtype)
        else:
            choice = select_fraclen(
                weight, self.wl, True, self.config.fraclen_method, self.dim, self.config.coefficients
            )
            fl = choice.fraclen
            # new tensors, not in-place updates (see ActQuant.forward)
            self.finite = self.finite & choice.finite
            self.fraclen = fl.detach().to(torch.long)
        if self.dim is not None:  # (C,) -> (C, 1, ...): one FL per output channel
            fl = fl.view(-1, *[1] * (weight.dim() - 1))
        return quantize_on_grid(weight, fl, *int_range(self.wl, signed=True))

    def quantize_bias(self, bias: torch.Tensor, input_fraclen: torch.Tensor) -> torch.Tensor:
        """Round the bias to the accumulator's grid ``2**-(fl_x + fl_w)`` (an int32 in the
        integer model), with a straight-through gradient."""
        if self.config.floating:
            return bias
        step = torch.exp2(-(input_fraclen.to(bias.dtype) + self.fraclen.to(bias.dtype)))
        return bias + (torch.round(bias / step) * step - bias).detach()
