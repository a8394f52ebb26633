"""QuantConfig: how a model is quantized. The defaults are the paper's 8-bit setting."""

from __future__ import annotations

import warnings
from dataclasses import InitVar, dataclass
from typing import ClassVar

from f8lab.quant.choose import FRACLEN_METHODS
from f8lab.quant.formats import MAX_WORD_LENGTH, MIN_WORD_LENGTH, check_fraclen
from f8lab.quant.formula import COEFFICIENT_SOURCES
from f8lab.settings import check_settings, positive, setting, up_to_one


def word_length(value: int) -> str | None:
    """The check of a word-length field."""
    ok = MIN_WORD_LENGTH <= value <= MAX_WORD_LENGTH
    return None if ok else f"must be a word length in {MIN_WORD_LENGTH}..{MAX_WORD_LENGTH}"


@dataclass(frozen=True)
class QuantConfig:
    """Quantization settings (docs/method.md §3-§5). ``QuantConfig()`` is the paper's
    conventional setting: weights [8, 7], inputs [8, 6], per layer, std formula, PACT
    clipping, EMA momentum 0.1."""

    wl: int = setting(8, check=word_length)  # word length of weights and layer inputs, 2..16
    weight_fraclen: int | None = None  # weight FL when fraclen_method="fixed"; None: wl - 1
    input_fraclen: int | None = None  # initial input FL (EMA buffer); None: wl - 2
    # how FLs are chosen: "std" | "mean" | "rms" (formula), "grid", "max" (the largest value
    # fits: classic dynamic fixed point), "fixed" (weight_fraclen / input_fraclen throughout)
    fraclen_method: str = setting("std", choices=FRACLEN_METHODS + ("fixed",))
    coefficients: str = setting("published", choices=COEFFICIENT_SOURCES)  # formula coefficients
    per_channel: bool = False  # one weight FL per output channel instead of per layer
    clipping: bool = True  # PACT clipping with a learned level; False: s = 1
    floating: bool = False  # run the same graph without rounding (the FP baseline)
    ema_momentum: float = setting(0.1, check=up_to_one)  # fl <- m * FL_batch + (1 - m) * fl
    alpha_init: float = setting(8.0, check=positive)  # initial PACT clipping level
    share_clipping: bool = True  # tensors tied by an identity path share one alpha
    rescale_classifier: bool = False  # classifier weight / (sqrt(N_out) * std): "rescale forward"
    signed_input: bool = False  # normalised images (signed FL 5) instead of pixels/256 (FL 8)
    # BN folding in training: "batch" (F8Net's, two convolutions) or "running" (one
    # convolution, corrected to batch statistics)
    bn_fold: str = setting("batch", choices=("batch", "running"))
    # residual add: "int32" (the branch's int32 accumulator plus the shortcut, as F8Net
    # adds) or "int8" (both terms requantized to 8-bit tensors first, as runtimes' 8-bit
    # adds read them); an identity shortcut is the block input's 8-bit tensor either way
    residual: str = setting("int32", choices=("int32", "int8"))
    # the former names of wl and fraclen_method, still accepted as arguments (with a
    # warning; read wl and fraclen_method); a config file that uses them is refused
    bits: InitVar[int | None] = None
    fraclen: InitVar[str | None] = None
    RENAMED: ClassVar[dict[str, str]] = {"bits": "wl", "fraclen": "fraclen_method"}

    def __post_init__(self, bits: int | None, fraclen: str | None) -> None:
        for old, value in (("bits", bits), ("fraclen", fraclen)):
            if value is not None:
                new = self.RENAMED[old]
                warnings.warn(
                    f"QuantConfig({old}=...) is now QuantConfig({new}=...)", DeprecationWarning, stacklevel=3
                )
                object.__setattr__(self, new, value)
        check_settings(self)
        weight = self.wl - 1 if self.weight_fraclen is None else self.weight_fraclen
        inputs = max(self.wl - 2, 0) if self.input_fraclen is None else self.input_fraclen
        object.__setattr__(self, "weight_fraclen", check_fraclen(weight, self.wl, signed=True))
        object.__setattr__(self, "input_fraclen", check_fraclen(inputs, self.wl, signed=True))
