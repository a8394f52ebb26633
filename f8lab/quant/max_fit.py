"""The classic dynamic fixed-point format: the finest FL at which the largest value fits.

Earlier fixed-point work chose each tensor's format from its largest magnitude alone, so
that nothing clips: ``FL = floor(log2(qmax / max|x|))``. One outlier then coarsens the grid
of every other value, which is what F8Net's formula (docs/method.md §2) avoids by clipping.
``quant.fraclen_method=max`` trains with this rule (weights and inputs).
"""

from __future__ import annotations

import torch

from f8lab.quant.formats import channel_rows, fraclen_range, int_range


def tensor_peak(x: torch.Tensor, signed: bool = True, dim: int | None = None) -> torch.Tensor:
    """The largest magnitude the quantizer must hold: ``max|x|`` (signed) or ``max(relu(x))``
    (unsigned), over the tensor or per slice along ``dim``. NaN in ``x`` gives NaN."""
    values = x.detach() if signed else x.detach().clamp(min=0)
    peak = channel_rows(values.abs(), dim).amax(dim=1)
    return peak[0] if dim is None else peak


def max_fit_fraclen(peak: torch.Tensor, wl: int, signed: bool) -> torch.Tensor:
    """``clamp(floor(log2(qmax / peak)), 0, FL_max)`` in float64: the largest FL with
    ``peak <= qmax * 2^-FL``; a peak of 0 gives FL_max. Float, integer values."""
    lo, hi = fraclen_range(wl, signed)
    qmax = int_range(wl, signed)[1]
    return torch.floor(torch.log2(qmax / peak.double())).clamp(lo, hi)
