"""EMA tracking of an activation's fractional length (docs/method.md §3).

Each quantized layer keeps a float buffer ``fraclen`` (initialised to 6 at 8 bit). In a
training step the batch's own fractional length ``FL_b`` quantizes the batch and moves the
buffer: ``fl <- momentum * FL_b + (1 - momentum) * fl`` with momentum 0.1. In evaluation
the layer uses ``clamp(round(fl))``.
"""

from __future__ import annotations

import torch
from torch import nn

from f8lab.quant.formats import check_fraclen, fraclen_range


class FraclenEMA(nn.Module):
    """The running fractional length of one quantized input.

    Buffers (saved in checkpoints): ``fraclen`` (float, the running value) and ``updates``
    (how many batches it has seen; 0 means never calibrated).
    """

    def __init__(self, wl: int = 8, signed: bool = True, init: int = 6, momentum: float = 0.1) -> None:
        super().__init__()
        check_fraclen(init, wl, signed)
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"EMA momentum must be in (0, 1], got {momentum}")
        self.wl, self.signed, self.momentum = wl, signed, momentum
        self.fraclen: torch.Tensor
        self.updates: torch.Tensor
        self.register_buffer("fraclen", torch.tensor(float(init)))
        self.register_buffer("updates", torch.tensor(0, dtype=torch.long))

    @torch.no_grad()
    def update(self, batch_fraclen: int | torch.Tensor) -> None:
        """Move the running value towards this batch's fractional length (an int, or a
        0-dim tensor on the buffer's device: no host synchronisation)."""
        # new tensors, not in-place updates: a compiled step may still need the old values
        self.fraclen = self.fraclen * (1.0 - self.momentum) + self.momentum * batch_fraclen
        self.updates = self.updates + 1

    def value(self) -> torch.Tensor:
        """The evaluation format as a 0-dim float tensor on the buffer's device:
        ``clamp(round(fl))``, rounding half to even; ``int(...)`` of it for people."""
        lo, hi = fraclen_range(self.wl, self.signed)
        return self.fraclen.round().clamp(lo, hi)

    def extra_repr(self) -> str:
        kind = "signed" if self.signed else "unsigned"
        return f"{kind} {self.wl}-bit, fraclen={self.fraclen.item():.3f}, momentum={self.momentum}"
