"""The figures draw from the tables they are given."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from f8lab.analysis import (  # noqa: E402
    plot_coefficients_by_width,
    plot_formula_vs_grid,
    plot_fraclens,
    plot_fraclens_in_training,
    plot_gaussian_distance,
    plot_learning_curves,
    plot_results,
)


def test_plot_fraclens_draws_every_layer():
    table = pd.DataFrame(
        {
            "layer": ["conv1", "layer1.0.conv1", "fc"],
            "fl_in": [8, 5, 4],
            "fl_w": [7, [5, 6, 7], 8],
            "fl_out": [5, 4, 12],
        }
    )
    fig = plot_fraclens(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(table.layer)
    assert len(ax.get_legend().get_texts()) == 3


def test_results_show_the_mean_and_the_spread_over_seeds():
    runs = pd.DataFrame(
        dict(run=["float", "a", "a", "a"], group=["float"] + ["ablation"] * 3, top1=[91.5, 90.0, 90.5, 91.0])
    )
    ax = plot_results(runs).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["float", "a"]
    labels = [t.get_text() for t in ax.texts]
    assert labels == [" 91.50", " 90.50 ± 0.50 (3 seeds)"]
    assert ax.get_xlim() == (0, 100)


def test_learning_curves_and_fraclens_in_training():
    frame = pd.DataFrame(dict(epoch=[1, 2], top1=[50.0, 60.0], train_loss=[1.0, 0.5]))
    fig = plot_learning_curves({"fp": frame, "f8": frame}, after={"f8": 2})
    assert list(fig.axes[0].lines[1].get_xdata()) == [3, 4]  # drawn after the float run
    fls = pd.DataFrame(
        dict(epoch=[1, 1, 2, 2], layer=["b", "a", "b", "a"], tensor=["input"] * 4, fl=[6.0, 5.0, 7.0, 5.0])
    )
    fls = pd.concat([fls, fls.assign(tensor="weight")])
    ax = plot_fraclens_in_training(fls).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a"]  # network order


def test_the_package_draws_the_notebooks_other_figures():
    stats = pd.DataFrame(dict(kind=["activation", "weight"], ks_gaussian=[0.1, 0.02]))
    assert len(plot_gaussian_distance(stats).axes[0].lines) == 2
    by_width = pd.DataFrame(
        dict(
            wl=[4, 8, 4, 8],
            quantizer=["signed"] * 2 + ["unsigned"] * 2,
            C=[3.8, 40.0, 7.0, 70.0],
            stored_table=[3.8, 39.0, 7.1, 69.0],
        )
    )
    assert len(plot_coefficients_by_width(by_width).axes[0].lines) == 4
    table = pd.DataFrame(
        dict(kind=["activation", "folded weight"], formula_fl=[5, 6], grid_fl=[4, 6], error_ratio=[1.3, 1.0])
    )
    fig = plot_formula_vs_grid(table)
    assert fig.axes[0].get_ylabel() == "fractional length"
