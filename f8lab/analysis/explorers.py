"""Interactive explorers (ipywidgets): move a slider, see the quantization grid and its error.

``quant_explorer`` puts any tensor of a model under any format; ``formula_explorer`` redraws
the Monte Carlo study of docs/method.md §2 for any word length; ``fraclen_choice_explorer``
sets the formula's choices (each statistic) against grid search's on any tensor;
``run_explorer`` shows any training run's learning curves and formats over epochs;
``integer_layer_explorer`` shows a convolution's formats, integer weights and how large its
accumulator can grow at any word length (``formats_at_width``).
"""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display
from matplotlib.ticker import MaxNLocator
from torch import nn

from f8lab.analysis.fraclen_study import (
    fit_coefficient,
    optimal_fraclen_curve,
    relative_error,
    step_thresholds,
)
from f8lab.analysis.plots import (
    plot_error_curves,
    plot_fraclens_in_training,
    plot_learning_curves,
    plot_quantization,
)
from f8lab.analysis.values import ModelTensor, model_tensors
from f8lab.models.describe import quantized_layers
from f8lab.nn import FixLinear
from f8lab.quant import fix_quant, fraclen_grid_search
from f8lab.quant.choose import choose_fraclen
from f8lab.quant.formats import MAX_WORD_LENGTH, MIN_WORD_LENGTH, fraclen_range, int_range
from f8lab.quant.formula import METRICS, coefficient
from f8lab.quant.grid_search import grid_errors, least_error_fraclen, quant_rmse


def _show(output: widgets.Output, *figures) -> None:
    """Replace what ``output`` shows by ``figures`` (closed once drawn)."""
    with output:
        output.clear_output(wait=True)
        for fig in figures:
            display(fig)
            plt.close(fig)


def quantization_summary(x: torch.Tensor, wl: int, fl: int, signed: bool) -> dict:
    """How format ``(wl, fl, signed)`` treats ``x``: RMS error, error relative to the std,
    the fraction of values clamped, and the FLs that the formula and grid search pick."""
    lo, hi = int_range(wl, signed)
    scaled = x.detach().double() * 2.0**fl
    clamped = ((scaled < lo - 0.5) | (scaled > hi + 0.5)).double().mean()
    rmse = float(quant_rmse(x, wl, fl, signed))
    std = float(x.double().std(correction=0))
    return dict(
        rmse=rmse,
        relative_error=rmse / std if std > 0 else float("nan"),
        clamped=float(clamped),
        formula_fl=int(choose_fraclen(x, wl, signed)),
        grid_fl=int(fraclen_grid_search(x, wl, signed)),
    )


def _summary_html(label: str, wl: int, fl: int, signed: bool, summary: dict) -> str:
    return (
        f"<b>{label}</b>: {'signed' if signed else 'unsigned'} [{wl}, {fl}] &nbsp; "
        f"RMS error {summary['rmse']:.3g} ({100 * summary['relative_error']:.2f}% of σ), "
        f"{100 * summary['clamped']:.3f}% clamped &nbsp; | &nbsp; formula FL "
        f"{summary['formula_fl']}, grid-search FL {summary['grid_fl']}"
    )


def quant_explorer(tensors: list[ModelTensor]) -> widgets.VBox:
    """Sliders for the bit width and the fractional length, and a tensor picker; the figure
    shows the grid over the tensor's histogram and the line under it the error, live.
    The two buttons jump to the formula's FL and to grid search's."""
    if not tensors:
        raise ValueError("quant_explorer needs at least one tensor (see model_tensors)")
    picker = widgets.Dropdown(
        options=[(t.label, i) for i, t in enumerate(tensors)],
        description="tensor",
        layout=widgets.Layout(width="420px"),
    )
    wl = widgets.IntSlider(value=8, min=MIN_WORD_LENGTH, max=MAX_WORD_LENGTH, description="bit width")
    fraclen = widgets.IntSlider(value=0, description="frac. length")
    to_formula = widgets.Button(description="formula FL")
    to_grid = widgets.Button(description="grid-search FL")
    summary = widgets.HTML()
    figure = widgets.Output()

    def tensor() -> ModelTensor:
        return tensors[picker.value]

    def redraw(*_) -> None:
        t = tensor()
        info = quantization_summary(t.values, wl.value, fraclen.value, t.signed)
        summary.value = _summary_html(t.label, wl.value, fraclen.value, t.signed, info)
        _show(figure, plot_quantization(t.values, wl.value, fraclen.value, t.signed))

    def formula_fl() -> int:
        return int(choose_fraclen(tensor().values, wl.value, tensor().signed))

    def set_range(*_) -> None:
        lo, hi = fraclen_range(wl.value, tensor().signed)
        with fraclen.hold_trait_notifications():
            fraclen.min, fraclen.max = lo, hi
        start = formula_fl()
        if fraclen.value == start:  # no change event: draw here
            redraw()
        fraclen.value = start

    picker.observe(set_range, names="value")
    wl.observe(set_range, names="value")
    fraclen.observe(redraw, names="value")
    to_formula.on_click(lambda _: setattr(fraclen, "value", formula_fl()))
    to_grid.on_click(
        lambda _: setattr(
            fraclen, "value", int(fraclen_grid_search(tensor().values, wl.value, tensor().signed))
        )
    )
    set_range()
    return widgets.VBox([picker, widgets.HBox([wl, fraclen, to_formula, to_grid]), summary, figure])


def error_curve_figure(wl: int, signed: bool, sigmas: np.ndarray, samples: int, seed: int = 0):
    """The Monte Carlo study at word length ``wl``, with the fitted C and the stored one."""
    errors = relative_error(sigmas, wl, signed, samples, seed)
    fitted = fit_coefficient(
        step_thresholds(sigmas, optimal_fraclen_curve(sigmas, wl, signed, samples, seed))
    )
    stored = coefficient(wl, signed, "std", "derived")
    title = (
        f"{'signed' if signed else 'unsigned'} {wl}-bit: fitted C = {fitted:.2f} (stored table: {stored:.2f})"
    )
    return plot_error_curves(sigmas, errors, fitted, title), fitted


def formula_explorer(sigmas: np.ndarray | None = None, samples: int = 2_000) -> widgets.VBox:
    """A bit-width slider and a signed/unsigned switch that redraw the error curves, the
    optimal-FL staircase and the fitted formula (fewer σ and samples than the full study,
    so that it redraws in about a second); ``sigmas`` default: 300 from 1e-3 to 1e3."""
    sigmas = np.logspace(-3, 3, 300) if sigmas is None else sigmas
    wl = widgets.IntSlider(value=8, min=MIN_WORD_LENGTH, max=MAX_WORD_LENGTH, description="bit width")
    kind = widgets.ToggleButtons(options=[("signed", True), ("unsigned", False)])
    caption = widgets.HTML()
    figure = widgets.Output()

    def redraw(*_) -> None:
        fig, fitted = error_curve_figure(wl.value, kind.value, sigmas, samples)
        _show(figure, fig)
        kind_name = "signed" if kind.value else "unsigned"
        caption.value = f"fitted C for {wl.value}-bit {kind_name}: <b>{fitted:.2f}</b>"

    wl.observe(redraw, names="value")
    kind.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([wl, kind]), caption, figure])


def fraclen_choices(x: torch.Tensor, wl: int, signed: bool) -> dict[str, tuple[int, float]]:
    """The FL that grid search and the formula on each statistic pick for ``x`` (published
    coefficients), each with its RMS error: ``{method: (fl, rmse)}``."""
    return _choices(x, wl, signed, grid_errors(x, wl, signed))


def _choices(x: torch.Tensor, wl: int, signed: bool, errors: torch.Tensor) -> dict[str, tuple[int, float]]:
    """``fraclen_choices`` from ``errors``, the ``grid_errors`` of ``x``."""
    hi = fraclen_range(wl, signed)[1]
    picks = {"grid search": int(least_error_fraclen(errors, wl, signed))}
    picks.update({f"formula ({metric})": int(choose_fraclen(x, wl, signed, metric)) for metric in METRICS})
    return {method: (fl, float(errors[hi - fl])) for method, fl in picks.items()}


def fraclen_choice_figure(
    errors: np.ndarray, choices: dict[str, tuple[int, float]], lo: int = 0, title: str = ""
):
    """The RMS error of every valid FL (``errors``, FL ``lo`` first), with the FL each
    method picks (``fraclen_choices``) marked."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.semilogy(np.arange(lo, lo + len(errors)), errors, "o-", color="0.4", ms=4, label="every FL")
    styles = ["-", "--", "-.", ":"]
    for i, (method, (fl, rmse)) in enumerate(choices.items()):
        ax.axvline(
            fl,
            linestyle=styles[i % len(styles)],
            lw=2,
            color=plt.cm.tab10(i),
            label=f"{method}: FL {fl}, RMS {rmse:.3g}",
        )
    ax.set(xlabel="fractional length", ylabel="RMS quantization error", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def fraclen_choice_explorer(tensors: list[ModelTensor]) -> widgets.VBox:
    """A tensor picker and a bit-width slider: the error of every FL on the tensor, and the
    FL that grid search and the formula on each statistic pick, with what each costs."""
    if not tensors:
        raise ValueError("fraclen_choice_explorer needs at least one tensor (see model_tensors)")
    picker = widgets.Dropdown(
        options=[(t.label, i) for i, t in enumerate(tensors)],
        description="tensor",
        layout=widgets.Layout(width="420px"),
    )
    wl = widgets.IntSlider(value=8, min=MIN_WORD_LENGTH, max=MAX_WORD_LENGTH, description="bit width")
    summary = widgets.HTML()
    figure = widgets.Output()

    def redraw(*_) -> None:
        t = tensors[picker.value]
        errors = grid_errors(t.values, wl.value, t.signed)
        choices = _choices(t.values, wl.value, t.signed, errors)
        best = choices["grid search"][1]
        summary.value = " &nbsp;|&nbsp; ".join(
            f"{method}: FL <b>{fl}</b> ({rmse / best if best > 0 else 1.0:.2f}× grid's error)"
            for method, (fl, rmse) in choices.items()
        )
        lo = fraclen_range(wl.value, t.signed)[0]
        _show(figure, fraclen_choice_figure(errors.flip(0).double().numpy(), choices, lo, t.label))

    picker.observe(redraw, names="value")
    wl.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([picker, wl]), summary, figure])


def training_runs(results: str | Path) -> dict[str, Path]:
    """Every run folder under ``results`` (a folder with a ``metrics.csv``), by its path
    relative to ``results``."""
    results = Path(results)
    return {
        str(path.parent.relative_to(results)): path.parent for path in sorted(results.rglob("metrics.csv"))
    }


def run_explorer(results: str | Path) -> widgets.VBox:
    """A run picker over the runs under ``results``: the run's learning curves and, for a
    fixed-point run, every tensor's FL after each epoch."""
    runs = training_runs(results)
    if not runs:
        raise ValueError(f"no training run under {results}: train one first (f8lab train)")
    picker = widgets.Dropdown(options=list(runs), description="run", layout=widgets.Layout(width="420px"))
    figure = widgets.Output()

    def redraw(*_) -> None:
        folder = runs[picker.value]
        figures = [plot_learning_curves({picker.value: pd.read_csv(folder / "metrics.csv")})]
        if (folder / "fraclens.csv").is_file():
            figures.append(plot_fraclens_in_training(pd.read_csv(folder / "fraclens.csv")))
        _show(figure, *figures)

    picker.observe(redraw, names="value")
    redraw()
    return widgets.VBox([picker, figure])


def accumulator_bound(
    weight: torch.Tensor, wl: int, fl: int, input_signed: bool
) -> tuple[torch.Tensor, float]:
    """A layer's integer weights at format ``(wl, fl)`` and the largest magnitude its
    accumulator can reach: every input at its largest integer with the sign of its weight,
    ``max over output channels of sum |w_int| * x_max``, bias left out."""
    q = fix_quant(weight.detach().double(), wl, fl, True) * 2.0**fl
    x_max = int_range(wl, input_signed)[1]
    return q, float(q.abs().flatten(1).sum(1).max()) * x_max


def integer_layer_figure(q: torch.Tensor, wl: int, bound: float, title: str = ""):
    """The integer weights' histogram (left) and the accumulator's worst case against the
    24 bits float32 holds exactly and int32's 31 (right)."""
    lo, hi = int_range(wl, True)
    fig, (hist, acc) = plt.subplots(1, 2, figsize=(12, 3.2), width_ratios=[1.6, 1.0])
    hist.hist(q.flatten().numpy(), bins=np.arange(lo, hi + 2) - 0.5)
    hist.set(xlabel=f"integer weight ({wl}-bit signed)", ylabel="count", title=title)
    hist.xaxis.set_major_locator(MaxNLocator(integer=True))
    bits = np.log2(max(bound, 1.0))
    acc.barh([0], [bits], height=0.5)
    for limit, label in ((24, "float32 exact: 2^24"), (31, "int32: 2^31")):
        acc.axvline(limit, color="black", linestyle="--" if limit == 24 else "-", lw=1)
        acc.text(limit, 0.4, f" {label}", fontsize=8)
    acc.set(
        xlim=(0, 34), yticks=[], xlabel="log2 of the largest |accumulator|", title=f"worst case: 2^{bits:.1f}"
    )
    fig.tight_layout()
    return fig


def formats_at_width(model: nn.Module, tensors: list[ModelTensor], wl: int) -> pd.DataFrame:
    """A fixed-point model's convolutions as they would be at word length ``wl``: on its
    tensors (``model_tensors(model, images)``) the formula picks each layer's input FL and
    weight FL and the FL of the tensor it writes, at that width (the image keeps its fixed
    format where the width allows it); then the accumulator's FL,
    the requantization shift and the worst-case accumulator (``accumulator_bound``). At 8
    bits these are (up to the EMA's smoothing of input FLs) the model's own formats."""
    by_name = {(t.name, t.kind): t for t in tensors}
    reader = {id(quantizer): name for name, _, quantizer in quantized_layers(model)}
    rows = []
    for name, module, quantizer in quantized_layers(model):
        if isinstance(module, FixLinear) or (name, "folded weight") not in by_name:
            continue
        weight, inputs = by_name[name, "folded weight"], by_name[name, "activation"]
        fl_in = (
            int(choose_fraclen(inputs.values, wl, quantizer.signed))
            if quantizer.tracked
            else min(int(quantizer.running_fraclen()), fraclen_range(wl, quantizer.signed)[1])
        )  # the image's
        fl_w = int(choose_fraclen(weight.values, wl, True))
        out_quant = module.output_quant
        written = by_name.get((reader.get(id(out_quant), ""), "activation"))
        fl_out = (
            int(choose_fraclen(written.values, wl, out_quant.signed))
            if written is not None and out_quant is not None
            else None
        )
        _, bound = accumulator_bound(weight.values, wl, fl_w, quantizer.signed)
        rows.append(
            dict(
                layer=name,
                fl_in=fl_in,
                fl_w=fl_w,
                fl_acc=fl_in + fl_w,
                fl_out=fl_out,
                shift=None if fl_out is None else fl_in + fl_w - fl_out,
                accumulator_bits=float(np.log2(max(bound, 1.0))),
            )
        )
    if not rows:
        raise ValueError(
            "formats_at_width needs a fixed-point model and its tensors (model_tensors(model, images))"
        )
    return pd.DataFrame(rows)


def integer_layer_explorer(model: nn.Module, images: torch.Tensor) -> widgets.VBox:
    """A layer picker and a bit-width slider (2 to 16) over a fixed-point model's
    convolutions: the formats at that width (``formats_at_width``: input, weight,
    accumulator, the tensor written, the requantization shift), the integer weights, and
    the accumulator's worst case against 2^24 and 2^31."""
    tensors = model_tensors(model, images)
    by_width = {8: formats_at_width(model, tensors, 8).set_index("layer")}  # computed once per width
    layers = by_width[8].index.tolist()
    weights = {t.name: t.values for t in tensors if t.kind == "folded weight"}
    signed_input = {t.name: t.signed for t in tensors if t.kind == "activation"}
    picker = widgets.Dropdown(options=layers, description="layer", layout=widgets.Layout(width="420px"))
    wl = widgets.IntSlider(value=8, min=MIN_WORD_LENGTH, max=MAX_WORD_LENGTH, description="bit width")
    summary = widgets.HTML()
    figure = widgets.Output()

    def redraw(*_) -> None:
        if wl.value not in by_width:
            by_width[wl.value] = formats_at_width(model, tensors, wl.value).set_index("layer")
        row = by_width[wl.value].loc[picker.value]
        q, bound = accumulator_bound(
            weights[picker.value], wl.value, int(row.fl_w), signed_input[picker.value]
        )
        shift = "?" if pd.isna(row["shift"]) else int(row["shift"])
        summary.value = (
            f"<b>{picker.value}</b> at {wl.value} bits: input FL {int(row.fl_in)} "
            f"({'signed' if signed_input[picker.value] else 'unsigned'}), weights at FL {int(row.fl_w)} "
            f"(integers {int(q.min())}..{int(q.max())}), accumulator FL {int(row.fl_acc)}, "
            f"requantization shift {shift}; worst-case accumulator 2^{row.accumulator_bits:.1f} "
            f"({'fits' if bound < 2**31 else 'overflows'} int32, "
            f"{'exact' if bound <= 2**24 else 'not exact'} in float32)"
        )
        _show(figure, integer_layer_figure(q, wl.value, bound, picker.value))

    picker.observe(redraw, names="value")
    wl.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([picker, wl]), summary, figure])
