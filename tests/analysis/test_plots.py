"""The figures draw from the tables they are given."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from f8lab.analysis import plot_fraclens  # noqa: E402


def test_plot_fraclens_draws_every_layer():
    table = pd.DataFrame({"layer": ["conv1", "layer1.0.conv1", "fc"], "fl_in": [8, 5, 4],
                          "fl_w": [7, [5, 6, 7], 8], "fl_out": [5, 4, 12]})
    fig = plot_fraclens(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(table.layer)
    assert len(ax.get_legend().get_texts()) == 3
