"""ActQuant: the quantizer of one activation tensor, with PACT scaling (docs/method.md §3-§5).

The tensor that flows into an ActQuant is ``u = x / s`` with the fix scaling

    s = 2**FL * |α| / (2**(wl - signed) - 1)          (FL = round of the EMA buffer)

and ``s * Q_FL(u)`` equals PACT(x; α): FL places the binary point, α sets the clip. The
layers that produce this tensor fold ``1 / s`` into their weights and biases; the layers
that read it fold ``s`` back in. Each tensor has its own ActQuant and so its own private
FL; tensors tied by an identity path (``tied_to``) share one α, owned by a master ActQuant,
which keeps the ratio of their scales a power of two. The scale divides by the master's
number of levels, so this holds for tied tensors of different signedness too (an unsigned
block input and a signed block output): there the follower clips at α times the ratio of
the levels, 127/255 for a signed follower of an unsigned master at 8 bit.

Within a pass, the layer that writes a tensor runs before its quantizer and folds
``running_scale()``; the quantizer fixes that value as ``pass_scale()`` before training moves
its EMA, and the tensor's readers fold ``pass_scale()``. The tensor is rounded at
``batch_fraclen``: the batch's own FL in training, the running one in evaluation.

Modes: ``clipping=False`` sets s = 1 (pure fixed point); ``floating=True`` clamps like the
quantizer but does not round (with clipping off as well: a plain ReLU, the float network).
"""

from __future__ import annotations

import torch
from torch import nn

from f8lab.nn.link import Link
from f8lab.quant import FraclenEMA, QuantConfig, fraclen_range, int_range, quantize_on_grid, select_fraclen


class ActQuant(nn.Module):
    """Quantizes one activation tensor; an unsigned ActQuant also performs the ReLU.

    Args:
        config: the model's QuantConfig.
        signed: signed input (e.g. MobileNetV2 block outputs, normalised images) or
            unsigned (the input follows a ReLU, which this quantizer performs).
        max_value: the float activation's cap (6 for ReLU6), applied when clipping is
            off; with clipping on, the learned α takes its place.
        fixed_fraclen: a fixed format with s = 1 and no α (the image input: FL 8, unsigned).
        tied_to: a quantizer whose α this one shares (the tensors of an identity path); this
            one keeps its own FL and signedness, and clips at ``clip_level()``.
    """

    def __init__(
        self,
        config: QuantConfig,
        signed: bool = False,
        max_value: float | None = None,
        fixed_fraclen: int | None = None,
        tied_to: ActQuant | None = None,
    ) -> None:
        super().__init__()
        self.config, self.signed, self.max_value = config, signed, max_value
        self.wl = config.wl
        self.tracked = fixed_fraclen is None and config.fraclen_method != "fixed"
        self.clipping = config.clipping and fixed_fraclen is None
        init = config.input_fraclen if fixed_fraclen is None else fixed_fraclen
        assert init is not None  # QuantConfig fills input_fraclen in
        init = min(init, fraclen_range(self.wl, signed)[1])
        self.ema = FraclenEMA(self.wl, signed, init, config.ema_momentum)
        if tied_to is not None and tied_to.wl != self.wl:
            raise ValueError("tensors that share a clipping level must share their word length")
        self._master = None if tied_to is None else Link(tied_to.master)
        own_alpha = self.clipping and tied_to is None
        self.alpha = nn.Parameter(torch.tensor(float(config.alpha_init))) if own_alpha else None
        # the formats of the current forward pass, as tensors on the model's device (not saved):
        # the FL of this tensor's scale (the running FL before this pass moves it) ...
        self.pass_fraclen: torch.Tensor
        self.batch_fraclen: torch.Tensor
        self.finite: torch.Tensor
        self.register_buffer("pass_fraclen", torch.tensor(float(init)), persistent=False)
        # ... the FL the tensor was rounded at (the batch's own in training) ...
        self.register_buffer("batch_fraclen", torch.tensor(float(init)), persistent=False)
        # ... and whether every batch since the last check had finite values
        self.register_buffer("finite", torch.tensor(True), persistent=False)

    @property
    def master(self) -> ActQuant:
        """The ActQuant that owns this tensor's α (itself, unless it shares one)."""
        return self if self._master is None else self._master.module

    def levels(self) -> int:
        """``2**(wl - signed) - 1``: 127 signed, 255 unsigned at 8 bit."""
        return 2 ** (self.wl - int(self.signed)) - 1

    def clip_level(self) -> torch.Tensor:
        """Where this tensor clips, in the float model's units: |α| of the master, times
        ``levels / master's levels`` when the two differ in signedness."""
        return self._alpha().abs() * self.levels() / self.master.levels()

    def _alpha(self) -> torch.Tensor:
        alpha = self.master.alpha
        if alpha is None:
            raise RuntimeError("this quantizer has no clipping level (clipping is off)")
        return alpha

    def running_fraclen(self) -> torch.Tensor:
        """The running format, the rounded EMA buffer (evaluation's): a 0-dim float tensor."""
        return self.ema.value()

    def running_scale(self) -> torch.Tensor:
        """The fix scaling ``s = 2**FL * |α| / levels`` (1 without clipping; α and levels are
        the master's) at the running FL: what the layer writing this tensor folds in."""
        return self._scale_at(self.running_fraclen())

    def pass_scale(self) -> torch.Tensor:
        """The scale of the tensor this quantizer produced in this pass (the ``running_scale()``
        its writer folded, fixed before the EMA moved): what its readers fold in."""
        return self._scale_at(self.pass_fraclen)

    def _scale_at(self, fraclen: torch.Tensor) -> torch.Tensor:
        if not self.clipping:
            return torch.ones((), device=self.ema.fraclen.device)
        return torch.exp2(fraclen) * self._alpha().abs() / self.master.levels()

    def _quantize(self, u: torch.Tensor, fl: torch.Tensor) -> torch.Tensor:
        if not self.clipping and self.max_value is not None:
            u = u.clamp(max=self.max_value)
        if not self.config.floating:
            return quantize_on_grid(u, fl.to(u.dtype), *int_range(self.wl, self.signed))
        if not self.clipping:
            return u if self.signed else torch.relu(u)
        top = self.levels() * torch.exp2(-fl).to(u.dtype)
        return torch.clamp(u, -top if self.signed else torch.zeros_like(top), top)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        # buffers get new tensors, never in-place updates: a compiled step's backward may
        # read the values of this pass after the graph has written the next ones
        fl = self.running_fraclen()
        self.pass_fraclen = fl
        if self.training and self.tracked:
            choice = select_fraclen(
                u, self.wl, self.signed, self.config.fraclen_method, source=self.config.coefficients
            )
            self.finite = self.finite & choice.finite
            self.ema.update(choice.fraclen)
            fl = choice.fraclen
        self.batch_fraclen = fl
        return self._quantize(u, fl)

    def extra_repr(self) -> str:
        kind = "signed" if self.signed else "unsigned"
        return f"{kind} {self.wl}-bit, clipping={self.clipping}, tracked={self.tracked}"
