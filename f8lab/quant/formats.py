"""Fixed-point formats: word length, fractional length and signedness, and their checks.

A fixed-point number with word length ``wl`` and fractional length ``fl`` is an integer
``q`` times ``2**-fl`` (docs/method.md §1). Signed formats use the symmetric range
``±(2**(wl-1) - 1)`` (for 8 bit, -128 is unused); unsigned formats use ``0 .. 2**wl - 1``.
"""

from __future__ import annotations

import numbers

import torch

MIN_WORD_LENGTH = 2
MAX_WORD_LENGTH = 16


def check_word_length(wl: int) -> int:
    """Return ``wl`` if it is an integer word length in 2..16, else raise."""
    if isinstance(wl, bool) or not isinstance(wl, numbers.Integral):
        raise TypeError(f"word length must be an integer, got {wl!r} ({type(wl).__name__})")
    if not MIN_WORD_LENGTH <= wl <= MAX_WORD_LENGTH:
        raise ValueError(
            f"word length {wl} is out of range: f8lab supports {MIN_WORD_LENGTH}..{MAX_WORD_LENGTH} bits"
        )
    return int(wl)


def int_range(wl: int, signed: bool) -> tuple[int, int]:
    """The integer range ``(qmin, qmax)`` of a format: (-127, 127) or (0, 255) at 8 bit."""
    wl = check_word_length(wl)
    if signed:
        return -(2 ** (wl - 1) - 1), 2 ** (wl - 1) - 1
    return 0, 2**wl - 1


def check_exact_carrier(dtype: torch.dtype, qmin: int, qmax: int) -> None:
    """Raise unless floating-point ``dtype`` holds every integer in ``qmin..qmax`` exactly
    (float16 up to 2**11, bfloat16 up to 2**8): otherwise rounding to the grid could land
    one step past the range. A check of the dtype alone, so it costs no synchronisation."""
    exact = round(2 / torch.finfo(dtype).eps)  # 2**(mantissa bits + 1)
    if max(qmax, -qmin) > exact:
        raise TypeError(
            f"{dtype} holds integers exactly only up to {exact}, and the format's range "
            f"{qmin}..{qmax} goes past it; quantize a float32 copy (x.float()) or use a "
            "shorter word length"
        )


def fraclen_range(wl: int, signed: bool) -> tuple[int, int]:
    """Valid fractional lengths ``(0, fl_max)``: signed 0..wl-1, unsigned 0..wl."""
    wl = check_word_length(wl)
    return 0, wl - 1 if signed else wl


def _describe(wl: int, signed: bool) -> str:
    return f"{'signed' if signed else 'unsigned'} {wl}-bit"


def check_fraclen(fl: int | torch.Tensor, wl: int, signed: bool) -> int | torch.Tensor:
    """Return ``fl`` if it is a valid fractional length for the format, else raise.

    ``fl`` is a Python integer or a tensor of integer values (one per channel, or a
    0-dim tensor such as a rounded EMA buffer). Floats such as 6.5 are refused: round the
    fractional length first.
    """
    lo, hi = fraclen_range(wl, signed)
    if isinstance(fl, torch.Tensor):
        if fl.is_floating_point() and not torch.equal(fl, fl.round()):
            raise ValueError(f"fractional lengths must be integers, got {fl.tolist()}; round them first")
        if fl.numel() and (fl.min() < lo or fl.max() > hi):
            raise ValueError(
                f"fractional lengths {fl.tolist()} are out of range for {_describe(wl, signed)} ({lo}..{hi})"
            )
        return fl
    if isinstance(fl, bool) or not isinstance(fl, numbers.Integral):
        raise TypeError(
            f"fractional length must be an integer, got {fl!r} ({type(fl).__name__}); round it first"
        )
    if not lo <= fl <= hi:
        raise ValueError(f"fractional length {fl} is out of range for {_describe(wl, signed)} ({lo}..{hi})")
    return int(fl)


def channel_rows(x: torch.Tensor, dim: int | None) -> torch.Tensor:
    """``x`` as rows: (1, numel) for a per-tensor format, (C, numel / C) with the channels
    along ``dim`` for a per-channel one."""
    if dim is None:
        return x.reshape(1, -1)
    return x.transpose(0, dim).reshape(x.shape[dim], -1)


def check_finite(x: torch.Tensor, what: str = "tensor") -> None:
    """Raise if ``x`` holds NaN or Inf: no format can be chosen for it."""
    if not torch.isfinite(x).all():
        bad = x[~torch.isfinite(x)]
        raise ValueError(
            f"{what} holds {bad.numel()} non-finite value(s) (first: {bad.flatten()[0].item()}); "
            "a fixed-point format cannot be chosen for NaN or Inf: check the input or the "
            "learning rate"
        )
