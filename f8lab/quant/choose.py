"""Choosing a tensor's fractional length by the formula (any metric) or by grid search."""

from __future__ import annotations

import torch

from f8lab.quant.formula import METRICS, fraclen_from_stat, tensor_stat
from f8lab.quant.grid_search import fraclen_grid_search

FRACLEN_METHODS = METRICS + ("grid",)


def choose_fraclen(x: torch.Tensor, wl: int = 8, signed: bool = True, method: str = "std",
                   dim: int | None = None, source: str = "published") -> int | torch.Tensor:
    """The fractional length for ``x``: the formula on a statistic, or grid search.

    Args:
        x: the tensor to quantize.
        wl: word length, 2..16.
        signed: signed or unsigned quantizer.
        method: "std", "mean" or "rms" for the formula on that statistic, "grid" for
            grid search.
        dim: one FL per slice along ``dim``; None for one FL for the tensor.
        source: coefficients of the formula, "published" or "derived".

    Returns:
        An int for ``dim=None``, else a long tensor with one FL per slice along ``dim``.
    """
    if method == "grid":
        fl = fraclen_grid_search(x, wl, signed, dim)
        return int(fl) if dim is None else fl
    if method not in METRICS:
        raise ValueError(
            f"unknown fractional-length method {method!r}; choose one of "
            f"{', '.join(FRACLEN_METHODS)}"
        )
    stat = tensor_stat(x, method, signed, dim)
    if dim is None:  # one number: the formula in Python, no tensor round trips
        stat = float(stat)
    return fraclen_from_stat(stat, wl, signed, method, source)
