"""Fixed-point arithmetic: quantizer, formats, the fractional-length formula, grid search,
the classic largest-value format, EMA tracking and integer requantization (docs/method.md §1-§3, §6)."""

from f8lab.quant.choose import FRACLEN_METHODS, FraclenChoice, choose_fraclen, select_fraclen
from f8lab.quant.config import QuantConfig
from f8lab.quant.ema import FraclenEMA
from f8lab.quant.fix_quant import fix_quant, quantize_on_grid
from f8lab.quant.formats import check_fraclen, check_word_length, fraclen_range, int_range
from f8lab.quant.formula import coefficient, fraclen_from_stat, tensor_stat
from f8lab.quant.grid_search import fraclen_grid_search, quant_rmse
from f8lab.quant.max_fit import max_fit_fraclen, tensor_peak
from f8lab.quant.requantize import requantize

__all__ = [
    "FRACLEN_METHODS",
    "FraclenChoice",
    "FraclenEMA",
    "QuantConfig",
    "check_fraclen",
    "check_word_length",
    "choose_fraclen",
    "coefficient",
    "fix_quant",
    "fraclen_from_stat",
    "fraclen_grid_search",
    "fraclen_range",
    "int_range",
    "max_fit_fraclen",
    "quant_rmse",
    "quantize_on_grid",
    "requantize",
    "select_fraclen",
    "tensor_peak",
    "tensor_stat",
]
