"""The fractional-length formula against grid search on a model's tensors: do they pick the
same FL, how much larger is the formula's error where they differ, and how much time each
takes (docs/method.md §2; the kit's target: the same FL on >= 90% of the tensors, RMS error
within 5% of grid search's on every one)."""

from __future__ import annotations

import math
import time
from functools import partial

import pandas as pd
import torch

from f8lab.analysis.values import ModelTensor
from f8lab.quant import fraclen_grid_search
from f8lab.quant.choose import choose_fraclen
from f8lab.quant.formula import METRICS, fraclen_from_stat, tensor_stat
from f8lab.quant.grid_search import quant_rmse

POST_RELU_STD = "post-ReLU std"  # a statistic the study compares; the layers do not use it
RECTIFIED_STD = math.sqrt(0.5 - 0.5 / math.pi)  # std of relu(z) for z ~ N(0, 1): 0.584


def _timed(function, repeats: int):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return result, best


def formula_fraclen(
    x: torch.Tensor, wl: int, signed: bool, metric: str, dim: int | None, source: str
) -> int | torch.Tensor:
    """The formula's FL with one of the kit's statistics (``choose_fraclen``), or with
    ``"post-ReLU std"``: the std of the values an unsigned quantizer represents, relu(x).
    A rectified Gaussian's std is 0.584 of the std before the ReLU, so that statistic over
    0.584 is the pre-ReLU σ the std's coefficients expect; on signed tensors it is the std."""
    if metric != POST_RELU_STD or signed:
        return choose_fraclen(x, wl, signed, "std" if metric == POST_RELU_STD else metric, dim, source)
    sigma = tensor_stat(x.clamp(min=0), "std", dim=dim) / RECTIFIED_STD
    return fraclen_from_stat(sigma, wl, signed, "std", source)


def compare_fraclens(
    tensors: list[ModelTensor],
    wl: int = 8,
    per_channel: bool = False,
    metric: str = "std",
    kinds: tuple[str, ...] = ("folded weight", "activation"),
    repeats: int = 3,
    source: str = "published",
) -> pd.DataFrame:
    """A row per tensor: the formula's FL and grid search's, their RMS errors and times.

    Args:
        tensors: from ``model_tensors``.
        wl: word length.
        per_channel: one FL per output channel (weights only; activations keep one FL).
        metric: the formula's statistic, "std", "mean", "rms" or "post-ReLU std".
        kinds: which tensors to compare; by default those the 8-bit model quantizes.
        repeats: each method is timed this many times; the fastest run counts.
        source: the formula's coefficients, "published" or "derived".

    Returns:
        Columns layer, kind, signed, formula_fl, grid_fl (lists when per channel), agree
        (the fraction of channels, or 0/1), formula_rmse, grid_rmse, error_ratio
        (formula / grid, >= 1), formula_ms, grid_ms.
    """
    rows = []
    for tensor in tensors:
        if tensor.kind not in kinds:
            continue
        x = tensor.values
        dim = 0 if per_channel and tensor.kind != "activation" else None
        formula, formula_s = _timed(
            partial(formula_fraclen, x, wl, tensor.signed, metric, dim, source), repeats
        )
        grid, grid_s = _timed(partial(fraclen_grid_search, x, wl, tensor.signed, dim), repeats)
        formula, grid = torch.as_tensor(formula), torch.as_tensor(grid)
        formula_rmse = quant_rmse(x, wl, formula, tensor.signed, dim).square().mean().sqrt()
        grid_rmse = quant_rmse(x, wl, grid, tensor.signed, dim).square().mean().sqrt()
        ratio = float(formula_rmse / grid_rmse) if grid_rmse > 0 else 1.0
        rows.append(
            dict(
                layer=tensor.name,
                kind=tensor.kind,
                signed=tensor.signed,
                formula_fl=formula.tolist(),
                grid_fl=grid.tolist(),
                agree=float((formula == grid).float().mean()),
                formula_rmse=float(formula_rmse),
                grid_rmse=float(grid_rmse),
                error_ratio=ratio,
                formula_ms=1e3 * formula_s,
                grid_ms=1e3 * grid_s,
            )
        )
    return pd.DataFrame(rows)


def compare_statistics(
    tensors: list[ModelTensor], wl: int = 8, kinds: tuple[str, ...] = ("activation",)
) -> pd.DataFrame:
    """Which statistic of the formula predicts grid search best: a row per metric ("std",
    the pre-ReLU std for unsigned tensors; "post-ReLU std"; "mean", mean |x| of the
    represented values; "rms") and coefficient source ("published", "derived"), with the
    share of tensors on which it picks grid search's FL (``agree``, in %), and the
    formula's RMS error over grid search's, on average and at worst (``mean_ratio``,
    ``worst_ratio``). Sorted best first (agreement, then average error)."""
    rows = []
    for metric in (*METRICS, POST_RELU_STD):
        for source in ("published", "derived"):
            table = compare_fraclens(tensors, wl, metric=metric, kinds=kinds, repeats=1, source=source)
            rows.append(
                dict(
                    metric=metric,
                    source=source,
                    agree=100 * table.agree.mean(),
                    mean_ratio=table.error_ratio.mean(),
                    worst_ratio=table.error_ratio.max(),
                )
            )
    return pd.DataFrame(rows).sort_values(["agree", "mean_ratio"], ascending=[False, True], ignore_index=True)
