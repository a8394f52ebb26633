"""Residual addition: float, and fixed point with the identity path in the output's units."""

from __future__ import annotations

import torch
from torch import nn

from f8lab.nn.act_quant import ActQuant
from f8lab.nn.link import Link
from f8lab.quant import QuantConfig


class Add(nn.Module):
    """``branch + shortcut`` (the float residual addition); no quantizer writes its terms."""

    branch_target = shortcut_target = None

    def forward(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return branch + shortcut


class FixAdd(nn.Module):
    """The fixed-point residual addition (docs/method.md §5).

    ``residual="int32"`` (F8Net's add of the branch's accumulator): the branch arrives in
    the output tensor's units (its last conv folded ``1 / s_out``); a projection shortcut
    does too; an identity shortcut, the block input's 8-bit tensor, arrives in its units
    and is rescaled by ``s_in / s_out``, which clipping-level sharing makes a power of two:
    in integers, a shift that aligns the branch's int32 accumulator with the shortcut.
    (F8Net's code adds the input unquantized; docs/method.md, "F8Net's published models".)

    ``residual="int8"``: the branch (and a projection shortcut) has its own signed
    quantizer, with its own FL and the output's clipping level, so the add reads two
    8-bit tensors; each is rescaled to the output's units by a power of two.

    ``output_quant`` is the sum's quantizer (the 8-bit terms share its clipping level),
    ``identity_quant`` the block input's for an identity shortcut, None for a projection.
    """

    def __init__(
        self, config: QuantConfig, output_quant: ActQuant, identity_quant: ActQuant | None = None
    ) -> None:
        super().__init__()
        self.branch_quant: ActQuant | None = None
        self.shortcut_quant: ActQuant | None = None
        if config.residual == "int8":
            self.branch_quant = ActQuant(config, signed=True, tied_to=output_quant)
            if identity_quant is None:
                self.shortcut_quant = ActQuant(config, signed=True, tied_to=output_quant)
        self._output_quant = Link(output_quant)
        self._identity_quant = None if identity_quant is None else Link(identity_quant)

    @property
    def output_quant(self) -> ActQuant:
        """The quantizer of the sum."""
        return self._output_quant.module

    @property
    def identity_quant(self) -> ActQuant | None:
        """The block input's quantizer for an identity shortcut; None for a projection."""
        return None if self._identity_quant is None else self._identity_quant.module

    @property
    def branch_target(self) -> ActQuant:
        """The quantizer whose units the branch's last conv writes in."""
        return self.branch_quant if self.branch_quant is not None else self.output_quant

    @property
    def shortcut_target(self) -> ActQuant:
        """The quantizer whose units a projection shortcut's conv writes in."""
        return self.shortcut_quant if self.shortcut_quant is not None else self.output_quant

    def _in_output_units(
        self, x: torch.Tensor, quantizer: ActQuant | None, output_scale: torch.Tensor, quantize: bool
    ) -> torch.Tensor:
        if quantizer is None:
            return x
        return (quantizer(x) if quantize else x) * (quantizer.pass_scale() / output_scale)

    def forward(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        out = self.output_quant.running_scale()  # the sum's quantizer runs after this add
        branch = self._in_output_units(branch, self.branch_quant, out, True)
        identity = self.identity_quant
        if identity is not None:
            return branch + self._in_output_units(shortcut, identity, out, False)
        return branch + self._in_output_units(shortcut, self.shortcut_quant, out, True)
