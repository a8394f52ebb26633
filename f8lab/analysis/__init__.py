"""Statistics, error curves, plots and interactive explorers for the F8Net study."""

from f8lab.analysis.fraclen_study import (
    derive_coefficients,
    fit_coefficient,
    optimal_fraclen_curve,
    relative_error,
    step_thresholds,
)
from f8lab.analysis.plots import plot_fraclens

__all__ = [
    "plot_fraclens",
    "derive_coefficients",
    "fit_coefficient",
    "optimal_fraclen_curve",
    "relative_error",
    "step_thresholds",
]
