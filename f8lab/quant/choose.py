"""Choosing a tensor's fractional length: the formula (any metric), grid search, or the
largest value (classic dynamic fixed point).

``select_fraclen`` is the training path: everything stays a tensor on the tensor's device,
so a training step never waits on the host. ``choose_fraclen`` is the path for people:
it checks the values and returns Python integers.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from f8lab.quant.formats import check_finite, fraclen_range
from f8lab.quant.formula import (
    METRICS,
    check_choice,
    coefficient,
    formula_fraclen,
    fraclen_from_stat,
    tensor_stat,
)
from f8lab.quant.grid_search import fraclen_grid_search, grid_errors
from f8lab.quant.max_fit import max_fit_fraclen, tensor_peak

FRACLEN_METHODS = METRICS + ("grid", "max")


class FraclenChoice(NamedTuple):
    """A fractional length chosen on the device."""

    fraclen: torch.Tensor  # float, integer values: 0-dim, or one per slice along dim
    finite: torch.Tensor  # 0-dim bool: False when the tensor held NaN or Inf


def select_fraclen(
    x: torch.Tensor,
    wl: int = 8,
    signed: bool = True,
    method: str = "std",
    dim: int | None = None,
    source: str = "published",
) -> FraclenChoice:
    """The fractional length for ``x`` as a tensor on ``x``'s device, with no host
    synchronisation: what a layer uses in a training step.

    Args: as for ``choose_fraclen``.

    Returns:
        A FraclenChoice. Values that are NaN or Inf do not raise here (that would wait on
        the device): ``finite`` records them, for a check at the trainer's logging points.
    """
    lo, hi = fraclen_range(wl, signed)
    if method == "grid":
        best = grid_errors(x, wl, signed, dim).min(dim=0)  # the first (finest) of equal errors
        return FraclenChoice((hi - best.indices).to(x.dtype), torch.isfinite(best.values).all())
    if method == "max":
        peak = tensor_peak(x, signed, dim)
        return FraclenChoice(max_fit_fraclen(peak, wl, signed).to(x.dtype), torch.isfinite(peak).all())
    check_choice(method, FRACLEN_METHODS, "fractional-length method")
    stat = tensor_stat(x, method, signed, dim)
    fraclen = formula_fraclen(stat, coefficient(wl, signed, method, source), lo, hi)
    return FraclenChoice(fraclen.to(x.dtype), torch.isfinite(stat).all())


def choose_fraclen(
    x: torch.Tensor,
    wl: int = 8,
    signed: bool = True,
    method: str = "std",
    dim: int | None = None,
    source: str = "published",
) -> int | torch.Tensor:
    """The fractional length for ``x``: the formula on a statistic, or grid search.

    Args:
        x: the tensor to quantize.
        wl: word length, 2..16.
        signed: signed or unsigned quantizer.
        method: "std", "mean" or "rms" for the formula on that statistic, "grid" for
            grid search, "max" for the finest FL at which the largest value fits.
        dim: one FL per slice along ``dim``; None for one FL for the tensor.
        source: coefficients of the formula, "published" or "derived".

    Returns:
        An int for ``dim=None``, else a long tensor with one FL per slice along ``dim``.
        Raises on NaN or Inf.
    """
    if method == "grid":
        fl = fraclen_grid_search(x, wl, signed, dim)
        return int(fl) if dim is None else fl
    if method == "max":
        check_finite(x, "the tensor whose format is being chosen")
        fl = max_fit_fraclen(tensor_peak(x, signed, dim), wl, signed).long()
        return int(fl) if dim is None else fl
    check_choice(method, FRACLEN_METHODS, "fractional-length method")
    stat = tensor_stat(x, method, signed, dim)
    if not torch.isfinite(stat).all():  # any NaN or Inf in x makes the statistic non-finite
        check_finite(x, "the tensor whose format is being chosen")
    # one number: the formula in Python, no tensor round trips
    return fraclen_from_stat(float(stat) if dim is None else stat, wl, signed, method, source)
