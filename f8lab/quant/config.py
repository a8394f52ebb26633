"""QuantConfig: how a model is quantized. The defaults are the paper's 8-bit setting."""

from __future__ import annotations

import math
from dataclasses import dataclass

from f8lab.quant.choose import FRACLEN_METHODS
from f8lab.quant.formats import check_fraclen, check_word_length
from f8lab.quant.formula import COEFFICIENT_SOURCES

BN_FOLDS = ("batch", "running")
RESIDUALS = ("int32", "int8")


@dataclass(frozen=True)
class QuantConfig:
    """Quantization settings (docs/method.md §3-§5). ``QuantConfig()`` is the paper's
    conventional setting: weights [8, 7], inputs [8, 6], per layer, std formula, PACT
    clipping, EMA momentum 0.1."""

    bits: int = 8                    # word length of weights and layer inputs, 2..16
    weight_fraclen: int | None = None  # weight FL when fraclen="fixed"; None: bits - 1
    input_fraclen: int | None = None   # initial input FL (EMA buffer); None: bits - 2
    fraclen: str = "std"             # "std" | "mean" | "rms" (formula), "grid", "max" (the
                                     # largest value fits: classic dynamic fixed point), "fixed"
    coefficients: str = "published"  # formula coefficients: "published" or "derived"
    per_channel: bool = False        # one weight FL per output channel instead of per layer
    clipping: bool = True            # PACT clipping with a learned level; False: s = 1
    floating: bool = False           # run the same graph without rounding (the FP baseline)
    ema_momentum: float = 0.1        # fl <- m * FL_batch + (1 - m) * fl
    alpha_init: float = 8.0          # initial PACT clipping level
    share_clipping: bool = True      # tensors tied by an identity path share one alpha
    rescale_classifier: bool = False  # classifier weight / (sqrt(N_out) * std): "rescale forward"
    signed_input: bool = False       # normalised images (signed FL 5) instead of pixels/256 (FL 8)
    bn_fold: str = "batch"           # BN folding in training: "batch" (F8Net's, two convolutions)
                                     # or "running" (one convolution, corrected to batch statistics)
    residual: str = "int32"          # residual add: "int32" (F8Net's: the branch's accumulator plus
                                     # the shortcut) or "int8" (both terms requantized to 8-bit
                                     # tensors first, as runtimes' 8-bit adds read them)

    def __post_init__(self) -> None:
        check_word_length(self.bits)
        weight = self.bits - 1 if self.weight_fraclen is None else self.weight_fraclen
        inputs = max(self.bits - 2, 0) if self.input_fraclen is None else self.input_fraclen
        object.__setattr__(self, "weight_fraclen", check_fraclen(weight, self.bits, signed=True))
        object.__setattr__(self, "input_fraclen", check_fraclen(inputs, self.bits, signed=True))
        methods = FRACLEN_METHODS + ("fixed",)
        if self.fraclen not in methods:
            raise ValueError(
                f"unknown fraclen method {self.fraclen!r}; choose one of {', '.join(methods)}"
            )
        if self.coefficients not in COEFFICIENT_SOURCES:
            raise ValueError(
                f"unknown coefficients {self.coefficients!r}; choose one of "
                f"{', '.join(COEFFICIENT_SOURCES)}"
            )
        if self.bn_fold not in BN_FOLDS:
            raise ValueError(
                f"unknown bn_fold {self.bn_fold!r}; choose one of {', '.join(BN_FOLDS)}"
            )
        if self.residual not in RESIDUALS:
            raise ValueError(
                f"unknown residual {self.residual!r}; choose one of {', '.join(RESIDUALS)}"
            )
        if not 0.0 < self.ema_momentum <= 1.0:
            raise ValueError(f"ema_momentum must be in (0, 1], got {self.ema_momentum}")
        if not 0 < self.alpha_init < math.inf:
            raise ValueError(f"alpha_init must be a positive finite number, got {self.alpha_init}")
