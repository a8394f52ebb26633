"""Figures of the study."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.ticker import MaxNLocator

from f8lab.analysis.values import KINDS, ModelTensor, channel_std
from f8lab.quant.formats import int_range


def use_theme() -> None:
    """The study's one look for every figure: seaborn's white grid and colour-blind-safe
    palette, figures saved at 150 dpi with tight bounds."""
    sns.set_theme(style="whitegrid", palette="colorblind", context="notebook",
                  rc={"savefig.dpi": 150, "savefig.bbox": "tight", "axes.titlesize": "medium"})


def _mean(value) -> float:
    return float(np.mean(value))


def plot_fraclens(table: pd.DataFrame, title: str = "Fractional lengths across the network"):
    """Input, weight and output FL of every layer (from ``f8lab.export.layer_table``);
    per-channel weight FLs are drawn as their mean with their range."""
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(table)), 3.6))
    ax.step(x, table.fl_in, where="mid", label="input FL", color="tab:blue")
    ax.step(x, table.fl_out, where="mid", label="output FL", color="tab:green", linestyle="--")
    weights = [_mean(v) for v in table.fl_w]
    low = [w - float(np.min(v)) for w, v in zip(weights, table.fl_w)]
    high = [float(np.max(v)) - w for w, v in zip(weights, table.fl_w)]
    ax.errorbar(x, weights, yerr=[low, high], fmt="o", ms=3, color="tab:red", label="weight FL")
    ax.set_xticks(x, table.layer, rotation=90, fontsize=7)
    ax.set_ylabel("fractional length")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=3)
    fig.tight_layout()
    return fig


def _sample(values: torch.Tensor, count: int = 20_000, seed: int = 0) -> np.ndarray:
    values = values.flatten()
    if values.numel() > count:
        values = values[torch.randperm(values.numel(), generator=torch.Generator().manual_seed(seed))[:count]]
    return values.double().numpy()


def plot_histograms(tensors: list[ModelTensor], kind: str = "folded weight", cols: int = 6,
                    bins: int = 80):
    """A histogram per layer of the tensors of one kind, with the Gaussian the formula assumes
    (``N(0, σ²)``; for an unsigned quantizer's input, the pre-ReLU values and that Gaussian)."""
    chosen = [t for t in tensors if t.kind == kind]
    if not chosen:
        raise ValueError(f"no tensor of kind {kind!r}; kinds: {', '.join(KINDS)}")
    rows = -(-len(chosen) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 1.8 * rows), squeeze=False)
    for ax, tensor in zip(axes.flat, chosen):
        x = _sample(tensor.values, 50_000)
        sigma = x.std()
        ax.hist(x, bins=bins, density=True, color="tab:blue" if tensor.signed else "tab:orange")
        grid = np.linspace(x.min(), x.max(), 200)
        if sigma > 0:
            ax.plot(grid, np.exp(-0.5 * (grid / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)),
                    color="black", lw=0.8)
        ax.set_title(tensor.name, fontsize=7)
        ax.set_xlabel("value", fontsize=6)
        ax.set_ylabel("density", fontsize=6)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(chosen):]:
        ax.axis("off")
    fig.suptitle(f"{kind} values per layer (black: N(0, σ²) with the tensor's σ)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_boxes(tensors: list[ModelTensor], kinds: tuple[str, ...] = ("weight", "folded weight")):
    """Box plots of each layer's values, one panel per kind (whiskers at 1.5 IQR; outliers
    are the values that set the range a quantizer must cover)."""
    fig, axes = plt.subplots(len(kinds), 1, figsize=(12, 2.6 * len(kinds)), squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        chosen = [t for t in tensors if t.kind == kind]
        ax.boxplot([_sample(t.values, 5_000) for t in chosen], flierprops=dict(markersize=1.5))
        ax.set_xticks(np.arange(1, len(chosen) + 1), [t.name for t in chosen], rotation=90, fontsize=6)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_ylabel(kind)
    fig.tight_layout()
    return fig


def plot_channel_std(tensors: list[ModelTensor], kind: str = "folded weight"):
    """The std of every channel, a column of dots per layer: the spread that per-channel
    formats absorb and per-layer formats do not."""
    chosen = [t for t in tensors if t.kind == kind]
    fig, ax = plt.subplots(figsize=(12, 3.2))
    for i, tensor in enumerate(chosen):
        stds = channel_std(tensor).double().numpy()
        ax.scatter(np.full(len(stds), i), stds, s=4, alpha=0.5, color="tab:blue")
        ax.scatter([i], [tensor.values.double().std().item()], marker="_", s=200, color="black")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(chosen)), [t.name for t in chosen], rotation=90, fontsize=6)
    ax.set_ylabel("channel std")
    ax.set_title(f"{kind}: std per channel (dots) and per layer (bars)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_quantization(x: torch.Tensor, wl: int, fl: int, signed: bool, ax=None, title: str = ""):
    """A tensor's histogram under the quantization grid of format ``(wl, fl, signed)``:
    the shaded band is the range the format covers, the ticks its levels (when few enough
    to see), values outside it are clamped."""
    lo, hi = int_range(wl, signed)
    step = 2.0**-fl
    values = _sample(x, 50_000)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    ax.hist(values, bins=200, color="tab:blue", alpha=0.8, log=True)
    ax.axvspan(lo * step, hi * step, color="tab:green", alpha=0.12, label="representable range")
    if hi - lo <= 64:
        for level in range(lo, hi + 1):
            ax.axvline(level * step, color="tab:green", lw=0.5, alpha=0.6)
    ax.set_xlim(min(values.min(), lo * step) - step, max(values.max(), hi * step) + step)
    ax.set_xlabel("value")
    ax.set_ylabel("count (log)")
    ax.set_title(title or f"{'signed' if signed else 'unsigned'} [{wl}, {fl}]: step 2^-{fl}",
                 fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return ax.figure


def plot_error_curves(sigmas: np.ndarray, errors: np.ndarray, coefficient: float | None = None,
                      title: str = ""):
    """Left: the relative error ``E(σ, FL)`` for every FL (rows of ``errors``); right: the
    optimal FL* against σ, with the formula ``floor(log2(C / σ))`` when ``coefficient`` is
    given."""
    fl_max = errors.shape[0] - 1
    fl_star = fl_max - np.argmin(errors[::-1], axis=0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
    colours = plt.cm.viridis(np.linspace(0, 1, fl_max + 1))
    for fl in range(fl_max + 1):
        left.loglog(sigmas, errors[fl], color=colours[fl], lw=1, label=f"FL={fl}")
    left.set_ylim(max(errors.min() * 0.5, 1e-5), 2)
    left.set_xlabel("σ")
    left.set_ylabel("RMS error / σ")
    left.legend(fontsize=6, ncols=2)
    right.semilogx(sigmas, fl_star, drawstyle="steps-post", label="Monte Carlo FL*")
    if coefficient is not None:
        formula = np.clip(np.floor(np.log2(coefficient / sigmas)), 0, fl_max)
        right.semilogx(sigmas, formula, "--", color="tab:red", drawstyle="steps-post",
                       label=f"floor(log2({coefficient:.1f} / σ))")
    right.set_xlabel("σ")
    right.set_ylabel("FL")
    right.yaxis.set_major_locator(MaxNLocator(integer=True))
    right.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _trace_grid(formats: pd.DataFrame, kind: str, value: str) -> pd.DataFrame:
    rows = formats[formats.kind == kind]
    grid = rows.pivot(index="tensor", columns="iteration", values=value)
    return grid.loc[rows.tensor.unique()]  # network order


def plot_format_trace(traces: dict, fl_max: int = 8):
    """Runs traced step by step (``{label: FormatTrace}``), one row each: the training loss
    of every run (left), each activation's FL per step (middle: the format its scale used)
    and the share of each layer's weights that round to zero (right)."""
    labels = list(traces)
    mosaic: list[Any] = [["loss", f"fl:{label}", f"zero:{label}"] for label in labels]
    fig, axes = plt.subplot_mosaic(mosaic, figsize=(15, 3.2 * len(labels) + 0.6),
                                   width_ratios=[1.0, 1.25, 1.25])
    for label, trace in traces.items():
        axes["loss"].plot(trace.losses.iteration, trace.losses.loss, label=label)
        for panel, kind, value, cmap, top, bar in (
                ("fl", "input", "fl", "viridis", fl_max, "activation FL"),
                ("zero", "weight", "zero_share", "rocket_r", 1.0, "share of weights = 0")):
            ax = axes[f"{panel}:{label}"]
            sns.heatmap(_trace_grid(trace.formats, kind, value), ax=ax, cmap=cmap, vmin=0,
                        vmax=top, cbar_kws={"label": bar}, xticklabels="auto", yticklabels=True)
            ax.tick_params(axis="y", labelsize=6)
            ax.set(xlabel="training step", ylabel="",
                   title=f"{label}: {'activation FL' if kind == 'input' else 'weights rounded to 0'}")
    axes["loss"].set(xlabel="training step", ylabel="training loss (cross-entropy)",
                     title="loss per step")
    axes["loss"].legend(fontsize=8)
    fig.tight_layout()
    return fig
