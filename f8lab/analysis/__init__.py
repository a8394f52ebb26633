"""Statistics, error curves, plots and interactive explorers for the F8Net study."""

from f8lab.analysis.explorers import (
                                      error_curve_figure,
                                      formula_explorer,
                                      quant_explorer,
                                      quantization_summary,
)
from f8lab.analysis.format_trace import FormatTrace, trace_training
from f8lab.analysis.formula_vs_grid import compare_fraclens
from f8lab.analysis.fraclen_study import (
                                      derive_coefficients,
                                      fit_coefficient,
                                      optimal_fraclen_curve,
                                      relative_error,
                                      step_thresholds,
)
from f8lab.analysis.plots import (
                                      plot_boxes,
                                      plot_channel_std,
                                      plot_error_curves,
                                      plot_format_trace,
                                      plot_fraclens,
                                      plot_histograms,
                                      plot_quantization,
                                      use_theme,
)
from f8lab.analysis.values import ModelTensor, channel_std, model_tensors, value_stats

__all__ = [
    "use_theme",
    "FormatTrace",
    "ModelTensor",
    "channel_std",
    "compare_fraclens",
    "derive_coefficients",
    "error_curve_figure",
    "fit_coefficient",
    "formula_explorer",
    "model_tensors",
    "optimal_fraclen_curve",
    "plot_boxes",
    "plot_channel_std",
    "plot_error_curves",
    "plot_format_trace",
    "plot_fraclens",
    "plot_histograms",
    "plot_quantization",
    "quant_explorer",
    "quantization_summary",
    "relative_error",
    "step_thresholds",
    "trace_training",
    "value_stats",
]
