"""FixLinear: the fixed-point classifier, with the global average pool folded in.

The input is the quantized last feature map (N, C, H, W). It is summed over H·W (exact:
integers times 2**-FL), and 1/(H·W) is folded into the weight before it is quantized,
so the average pool is exact in integers for every architecture (docs/method.md §6):

    W~ = W · s_in / (s_out · H·W)        b~ = b / s_out        y = sum_hw(Q(u)) @ Q(W~).T + Q(b~)

The classifier's output is the logits: s_out = 1. ``rescale_forward`` replaces W by
``W / (sqrt(N_out) · std(W))`` (the "rescale forward" trick of docs/method.md §4).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from f8lab.nn.act_quant import ActQuant
from f8lab.nn.link import Link
from f8lab.nn.weight_quant import WeightQuant
from f8lab.quant import QuantConfig


class FixLinear(nn.Linear):
    """A fixed-point linear layer over a globally sum-pooled feature map, reading the
    tensor of ``input_quant``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        config: QuantConfig,
        input_quant: ActQuant,
        rescale_forward: bool = False,
    ) -> None:
        super().__init__(in_features, out_features, bias=True)
        self.rescale_forward = rescale_forward
        self.weight_quant = WeightQuant(config, out_features)
        self._input_quant = Link(input_quant)

    @property
    def input_quant(self) -> ActQuant:
        """The quantizer of the feature map this layer reads."""
        return self._input_quant.module

    def folded(self, pool_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The effective weight and bias for a feature map of ``pool_size`` = H·W positions."""
        weight = self.weight
        if self.rescale_forward:
            weight = weight / (math.sqrt(self.out_features) * weight.std())
        return weight * (self.input_quant.pass_scale() / pool_size), self.bias

    def forward(self, x_q: torch.Tensor) -> torch.Tensor:
        if x_q.dim() != 4:
            raise ValueError(f"FixLinear reads a (N, C, H, W) feature map, got shape {tuple(x_q.shape)}")
        weight, bias = self.folded(x_q.shape[2] * x_q.shape[3])
        weight = self.weight_quant(weight)
        bias = self.weight_quant.quantize_bias(bias, self.input_quant.batch_fraclen)
        return F.linear(x_q.sum(dim=(2, 3)), weight, bias)
