"""Grid search for the fractional length: try every valid FL, keep the smallest RMS error.

The brute-force alternative to the formula (docs/method.md §2): ``wl + 1`` quantize passes
instead of one reduction. The error of the unsigned quantizer is measured against
``relu(x)``, the function it implements.
"""

from __future__ import annotations

import torch

from f8lab.quant.fix_quant import fix_quant
from f8lab.quant.formats import channel_rows, check_finite, fraclen_range


def quant_rmse(
    x: torch.Tensor, wl: int, fl: int | torch.Tensor, signed: bool, dim: int | None = None
) -> torch.Tensor:
    """RMS error of ``fix_quant`` against the intended values (``relu(x)`` when unsigned).

    Returns:
        A 0-dim tensor, or one value per slice along ``dim``.
    """
    x = x.detach()
    target = x if signed else x.clamp(min=0)
    error = channel_rows(fix_quant(x, wl, fl, signed, dim) - target, dim)
    rmse = error.square().mean(dim=1).sqrt()
    return rmse[0] if dim is None else rmse


def fraclen_grid_search(
    x: torch.Tensor, wl: int = 8, signed: bool = True, dim: int | None = None
) -> torch.Tensor:
    """The fractional length with the smallest RMS quantization error.

    Ties go to the larger fractional length (the finer grid); a constant zero tensor
    therefore gets the largest one, as with the formula.

    Args:
        x: the tensor to quantize (finite values only).
        wl: word length, 2..16.
        signed: signed or unsigned quantizer.
        dim: search one FL per slice along ``dim``; None for one FL for the whole tensor.

    Returns:
        A 0-dim long tensor, or a long tensor with one FL per slice along ``dim``.
    """
    check_finite(x, "the tensor whose format is being chosen")
    return least_error_fraclen(grid_errors(x, wl, signed, dim), wl, signed)


def least_error_fraclen(errors: torch.Tensor, wl: int, signed: bool) -> torch.Tensor:
    """The FL of the smallest of ``grid_errors``'s errors, the finest of equal ones."""
    return fraclen_range(wl, signed)[1] - errors.argmin(dim=0)


def grid_errors(x: torch.Tensor, wl: int, signed: bool, dim: int | None = None) -> torch.Tensor:
    """RMS error of every valid FL, finest first (row ``i`` is FL ``fl_max - i``, so that
    ``argmin`` keeps the finest of equal errors): shape (fl_max + 1,) or (fl_max + 1, C)."""
    lo, hi = fraclen_range(wl, signed)
    return torch.stack([quant_rmse(x, wl, fl, signed, dim) for fl in range(hi, lo - 1, -1)])
