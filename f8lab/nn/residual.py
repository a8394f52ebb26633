"""Residual addition: float, and fixed point with the identity path in the output's units."""

from __future__ import annotations

import torch
from torch import nn

from f8lab.nn.act_quant import ActQuant


class Add(nn.Module):
    """``branch + shortcut`` (the float residual addition)."""

    def forward(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return branch + shortcut


class FixAdd(nn.Module):
    """The fixed-point residual addition (docs/method.md §5).

    The branch arrives in the output tensor's units (its last conv folded ``1 / s_out``).
    A projection shortcut does too; an identity shortcut arrives in the block input's
    units and is rescaled by ``s_in / s_out``, which clipping-level sharing makes a power of
    two: in integers, a shift that aligns the two accumulators.
    """

    def __init__(self) -> None:
        super().__init__()
        self._identity_quant: ActQuant | None = None
        self._output_quant: ActQuant | None = None

    def attach(self, identity_quant: ActQuant | None, output_quant: ActQuant) -> None:
        """``identity_quant``: the block input's quantizer for an identity shortcut, None
        for a projection; ``output_quant``: the quantizer of the sum."""
        object.__setattr__(self, "_identity_quant", identity_quant)
        object.__setattr__(self, "_output_quant", output_quant)

    def forward(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        if self._identity_quant is None:
            return branch + shortcut
        return branch + shortcut * (self._identity_quant.pass_scale() / self._output_quant.scale())
