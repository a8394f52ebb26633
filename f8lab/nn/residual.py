"""Residual addition: float, and fixed point with the identity path in the output's units."""

from __future__ import annotations

import torch
from torch import nn

from f8lab.nn.act_quant import ActQuant
from f8lab.quant import QuantConfig


class Add(nn.Module):
    """``branch + shortcut`` (the float residual addition)."""

    def forward(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return branch + shortcut


class FixAdd(nn.Module):
    """The fixed-point residual addition (docs/method.md §5).

    ``residual="int32"`` (F8Net's): the branch arrives in the output tensor's units (its
    last conv folded ``1 / s_out``); a projection shortcut does too; an identity shortcut
    arrives in the block input's units and is rescaled by ``s_in / s_out``, which
    clipping-level sharing makes a power of two: in integers, a shift that aligns the
    branch's int32 accumulator with the shortcut.

    ``residual="int8"``: the branch (and a projection shortcut) has its own signed
    quantizer, with its own FL and the output's clipping level, so the add reads two
    8-bit tensors; each is rescaled to the output's units by a power of two.
    """

    def __init__(self, config: QuantConfig | None = None, projection: bool = False) -> None:
        super().__init__()
        self.branch_quant: ActQuant | None = None
        self.shortcut_quant: ActQuant | None = None
        if config is not None and config.residual == "int8":
            self.branch_quant = ActQuant(config, signed=True)
            if projection:
                self.shortcut_quant = ActQuant(config, signed=True)
        self._identity_quant: ActQuant | None = None
        self._output_quant: ActQuant | None = None

    @property
    def identity_quant(self) -> ActQuant | None:
        """The block input's quantizer for an identity shortcut; None for a projection."""
        return self._identity_quant

    @property
    def output_quant(self) -> ActQuant:
        """The quantizer of the sum (an error until wired)."""
        if self._output_quant is None:
            raise RuntimeError("FixAdd is not wired: call attach(identity_quant, output_quant)")
        return self._output_quant

    def branch_output(self, output_quant: ActQuant) -> ActQuant:
        """The quantizer whose units the branch's last conv folds in."""
        return self.branch_quant if self.branch_quant is not None else output_quant

    def shortcut_output(self, output_quant: ActQuant) -> ActQuant:
        """The quantizer whose units a projection shortcut's conv folds in."""
        return self.shortcut_quant if self.shortcut_quant is not None else output_quant

    def attach(self, identity_quant: ActQuant | None, output_quant: ActQuant) -> None:
        """``identity_quant``: the block input's quantizer for an identity shortcut, None
        for a projection; ``output_quant``: the quantizer of the sum, whose clipping level
        the 8-bit terms share (call this after the block's own sharing is wired)."""
        object.__setattr__(self, "_identity_quant", identity_quant)
        object.__setattr__(self, "_output_quant", output_quant)
        for quant in (self.branch_quant, self.shortcut_quant):
            if quant is not None and output_quant.clipping:
                quant.share_alpha_with(output_quant)

    def _in_output_units(self, x: torch.Tensor, quant: ActQuant | None,
                         output_scale: torch.Tensor, quantize: bool) -> torch.Tensor:
        if quant is None:
            return x
        return (quant(x) if quantize else x) * (quant.pass_scale() / output_scale)

    def forward(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        out = self.output_quant.scale()
        branch = self._in_output_units(branch, self.branch_quant, out, True)
        if self._identity_quant is not None:
            return branch + self._in_output_units(shortcut, self._identity_quant, out, False)
        return branch + self._in_output_units(shortcut, self.shortcut_quant, out, True)
