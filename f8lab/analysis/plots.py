"""Figures of the study."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


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
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=3)
    fig.tight_layout()
    return fig
