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

_PALETTE = sns.color_palette("colorblind")


def use_theme() -> None:
    """The study's one look for every figure: seaborn's white grid and colour-blind-safe
    palette, figures saved at 150 dpi with tight bounds."""
    sns.set_theme(
        style="whitegrid",
        palette="colorblind",
        context="notebook",
        rc={"savefig.dpi": 150, "savefig.bbox": "tight", "axes.titlesize": "medium"},
    )


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


def plot_histograms(tensors: list[ModelTensor], kind: str = "folded weight", cols: int = 6, bins: int = 80):
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
        sns.histplot(
            x,
            bins=bins,
            stat="density",
            ax=ax,
            linewidth=0,
            color=_PALETTE[0] if tensor.signed else _PALETTE[1],
        )
        grid = np.linspace(x.min(), x.max(), 200)
        if sigma > 0:
            ax.plot(
                grid, np.exp(-0.5 * (grid / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)), color="black", lw=0.8
            )
        ax.set_title(tensor.name, fontsize=7)
        ax.set_xlabel("value", fontsize=6)
        ax.set_ylabel("density", fontsize=6)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(chosen) :]:
        ax.axis("off")
    fig.suptitle(f"{kind} values per layer (black: N(0, σ²) with the tensor's σ)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_boxes(tensors: list[ModelTensor], kinds: tuple[str, ...] = ("weight", "folded weight")):
    """Box plots of each layer's values, one panel per kind (whiskers at 1.5 IQR; outliers
    are the values that set the range a quantizer must cover)."""
    fig, axes = plt.subplots(len(kinds), 1, figsize=(12, 2.6 * len(kinds)), squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        values = pd.concat(
            [
                pd.DataFrame({"layer": t.name, "value": _sample(t.values, 5_000)})
                for t in tensors
                if t.kind == kind
            ]
        )
        sns.boxplot(values, x="layer", y="value", ax=ax, color=_PALETTE[0], fliersize=1.5, linewidth=0.8)
        ax.tick_params(axis="x", rotation=90, labelsize=6)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set(xlabel="", ylabel=f"{kind} value")
    fig.tight_layout()
    return fig


def plot_channel_std(tensors: list[ModelTensor], kind: str = "folded weight"):
    """The std of every channel, a column of dots per layer: the spread that per-channel
    formats absorb and per-layer formats do not."""
    chosen = [t for t in tensors if t.kind == kind]
    stds = pd.concat(
        [pd.DataFrame({"layer": t.name, "std": channel_std(t).double().numpy()}) for t in chosen]
    )
    fig, ax = plt.subplots(figsize=(12, 3.2))
    sns.stripplot(stds, x="layer", y="std", ax=ax, size=2.5, alpha=0.5, color=_PALETTE[0], log_scale=True)
    ax.scatter(
        range(len(chosen)),
        [t.values.double().std().item() for t in chosen],
        marker="_",
        s=200,
        color="black",
        zorder=3,
    )
    ax.tick_params(axis="x", rotation=90, labelsize=6)
    ax.set(xlabel="", ylabel="channel std")
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
    ax.set_title(title or f"{'signed' if signed else 'unsigned'} [{wl}, {fl}]: step 2^-{fl}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return ax.figure


def plot_error_curves(
    sigmas: np.ndarray, errors: np.ndarray, coefficient: float | None = None, title: str = ""
):
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
        right.semilogx(
            sigmas,
            formula,
            "--",
            color="tab:red",
            drawstyle="steps-post",
            label=f"floor(log2({coefficient:.1f} / σ))",
        )
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
    fig, axes = plt.subplot_mosaic(
        mosaic, figsize=(15, 3.2 * len(labels) + 0.6), width_ratios=[1.0, 1.25, 1.25]
    )
    for label, trace in traces.items():
        axes["loss"].plot(trace.losses.iteration, trace.losses.loss, label=label)
        fls = axes[f"fl:{label}"]
        _fraclen_heatmap(
            fls, _trace_grid(trace.formats, "input", "fl"), 0, fl_max, "activation FL", xticklabels="auto"
        )
        zeros = axes[f"zero:{label}"]
        sns.heatmap(
            _trace_grid(trace.formats, "weight", "zero_share"),
            ax=zeros,
            cmap="rocket_r",
            vmin=0,
            vmax=1.0,
            cbar_kws={"label": "share of weights = 0"},
            xticklabels="auto",
            yticklabels=True,
        )
        for panel, kind in (("fl", "input"), ("zero", "weight")):
            ax = axes[f"{panel}:{label}"]
            ax.tick_params(axis="y", labelsize=6)
            ax.set(
                xlabel="training step",
                ylabel="",
                title=f"{label}: {'activation FL' if kind == 'input' else 'weights rounded to 0'}",
            )
    axes["loss"].set(xlabel="training step", ylabel="training loss (cross-entropy)", title="loss per step")
    axes["loss"].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_learning_curves(curves: dict[str, pd.DataFrame], after: dict[str, int] | None = None):
    """Test top-1 and training loss per epoch of each run (``{name: metrics.csv frame}``);
    ``after`` shifts a run's epochs, e.g. a fine-tune drawn after the run it started from."""
    after = after or {}
    fig, (top1, loss) = plt.subplots(1, 2, figsize=(12, 3.4))
    for name, frame in curves.items():
        epochs = frame.epoch + after.get(name, 0)
        top1.plot(epochs, frame.top1, "o-", ms=3, label=name)
        loss.plot(epochs, frame.train_loss, "o-", ms=3, label=name)
    top1.set(xlabel="epoch", ylabel="test top-1 (%)")
    loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log")
    for ax in (top1, loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    top1.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _fraclen_heatmap(ax, grid: pd.DataFrame, low: int, high: int, label: str, **kwargs) -> None:
    """A heatmap of fractional lengths: one colour per integer FL from ``low`` to ``high``,
    the colour bar ticked at each."""
    colours = sns.color_palette("viridis", high - low + 1)
    sns.heatmap(
        grid,
        ax=ax,
        cmap=colours,
        vmin=low - 0.5,
        vmax=high + 0.5,
        yticklabels=True,
        cbar_kws={"label": label, "ticks": range(low, high + 1)},
        **kwargs,
    )


def plot_fraclens_in_training(fraclens: pd.DataFrame, title: str = ""):
    """Every quantized tensor's FL after each epoch, a heatmap per kind (inputs, weights),
    from a run's ``fraclens.csv``."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, tensor in zip(axes, ("input", "weight")):
        rows = fraclens[fraclens.tensor == tensor]
        grid = rows.pivot(index="layer", columns="epoch", values="fl").loc[rows.layer.unique()]
        _fraclen_heatmap(ax, grid, int(grid.min().min()), int(grid.max().max()), "fractional length")
        ax.tick_params(axis="y", labelsize=6)
        ax.set(xlabel="epoch", ylabel="", title=f"{title}{tensor} FL per layer")
    fig.tight_layout()
    return fig


def plot_formula_vs_grid(table: pd.DataFrame, title: str = "8-bit model"):
    """From ``compare_fraclens``: the formula's FL and grid search's per tensor (left) and
    the formula's RMS error over grid search's (right), in network order, per kind."""
    fig, (fls, ratios) = plt.subplots(1, 2, figsize=(12, 3.4))
    for kind, group in table.groupby("kind"):
        x = range(len(group))
        fls.plot(x, group.formula_fl, "o", label=f"{kind}: formula")
        fls.plot(x, group.grid_fl, "x", ms=8, label=f"{kind}: grid search")
        ratios.semilogy(x, group.error_ratio, "o-", ms=3, label=kind)
    fls.set(xlabel="layer (network order)", ylabel="fractional length", title=f"{title}: FL per tensor")
    ratios.set(
        xlabel="layer (network order)", ylabel="formula RMSE / grid RMSE", title="the formula's extra error"
    )
    for axis in (fls.xaxis, fls.yaxis, ratios.xaxis):  # layers and FLs are integers
        axis.set_major_locator(MaxNLocator(integer=True))
    fls.legend(fontsize=7)
    ratios.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_formats_side_by_side(tensor: ModelTensor, formats: dict[str, int], wl: int = 8):
    """One tensor quantized at several FLs (``{who: fl}``), a panel each: which part of the
    distribution each format gives up."""
    fig, axes = plt.subplots(1, len(formats), figsize=(6 * len(formats), 3), squeeze=False)
    for ax, (who, fl) in zip(axes[0], formats.items()):
        plot_quantization(
            tensor.values, wl, int(fl), tensor.signed, ax=ax, title=f"{tensor.label}, {who}: FL {fl}"
        )
    fig.tight_layout()
    return fig


def plot_results(runs: pd.DataFrame):
    """Test top-1 of every run (``run, group, top1``: a row per seed), one bar per run at
    the mean over its seeds, with ± one standard deviation where it has several, coloured
    by group; the axis spans 0-100%."""
    order = list(dict.fromkeys(runs.run))
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(order) + 1.2))
    sns.barplot(
        runs,
        x="top1",
        y="run",
        hue="group",
        order=order,
        errorbar="sd",
        dodge=False,
        capsize=0.3,
        err_kws={"linewidth": 1.2},
        ax=ax,
    )
    means = runs.groupby("run", sort=False).top1.agg(["mean", "std", "count"])
    for y, run in enumerate(order):
        mean, std, count = means.loc[run]
        label = f" {mean:.2f}" + (f" ± {std:.2f} ({int(count)} seeds)" if count > 1 else "")
        ax.text(mean + (std if count > 1 else 0.0), y, label, va="center", fontsize=8)
    ax.set_xlim(0, 100)
    ax.set(xlabel="test top-1 (%)", ylabel="")
    handles, labels = ax.get_legend_handles_labels()
    legend = ax.get_legend()
    if legend is not None:  # drawn again below the axes
        legend.remove()
    fig.legend(handles, labels, loc="lower center", ncols=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight(), 1, 1))  # room for the legend
    return fig


def plot_gaussian_distance(stats: pd.DataFrame):
    """From ``value_stats``: each tensor's KS distance to the Gaussian the formula assumes,
    in network order, per kind."""
    fig, ax = plt.subplots(figsize=(12, 3))
    for kind, group in stats.groupby("kind"):
        ax.plot(range(len(group)), group.ks_gaussian, "o-", ms=3, label=kind)
    ax.set(xlabel="layer (network order)", ylabel="KS distance to the formula's model")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    fig.tight_layout()
    return fig


def plot_coefficients_by_width(by_width: pd.DataFrame):
    """C of the std formula against the word length (``wl, quantizer, C, stored_table``):
    this run's Monte Carlo fit, and the table shipped in f8lab as crosses."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for kind, group in by_width.groupby("quantizer"):
        ax.semilogy(group.wl, group.C, "o-", label=f"{kind}: this run")
        ax.semilogy(group.wl, group.stored_table, "k+", ms=9)
    ax.set(
        xlabel="word length (bits)",
        ylabel="C (std metric)",
        title="C for every word length (+: the table shipped in f8lab)",
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    fig.tight_layout()
    return fig


def plot_schemes(runs: pd.DataFrame, float_top1: float):
    """Test top-1 against word length, one line per scheme (``scheme, bits, top1``: a row
    per seed; mean ± one standard deviation over the seeds), with the float model as the
    line to reach: the whole range on the left, the top five points on the right."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    stats = runs.groupby(["scheme", "bits"], sort=False).top1.agg(["mean", "std"]).reset_index()
    for ax, low in zip(axes, (0.0, float_top1 - 5)):
        for i, (scheme, group) in enumerate(stats.groupby("scheme", sort=False)):
            ax.errorbar(
                group.bits + (i - 1) * 0.08,
                group["mean"],
                yerr=group["std"].fillna(0),
                marker="o",
                ms=4,
                capsize=3,
                label=scheme,
            )
        ax.axhline(float_top1, color="0.3", ls="--", lw=1, label=f"float ({float_top1:.2f})")
        ax.set(
            xlabel="word length (bits)",
            ylabel="test top-1 (%)",
            ylim=(low, float_top1 + 1),
            xticks=sorted(runs.bits.unique()),
        )
        ax.invert_xaxis()
    axes[0].set_title("the whole range", fontsize=9)
    axes[1].set_title("the top five points", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.45 / fig.get_figheight(), 1, 1))
    return fig
