"""Integer requantization: shift an int32 accumulator to the next layer's format.

docs/method.md §6. With ``n = acc_fl - out_fl``: for ``n > 0`` a right shift by ``n`` that
rounds half to even, for ``n <= 0`` a left shift by ``-n``; then saturation to the
output's integer range. The result equals ``clamp(round_half_even(acc / 2**n))`` exactly,
with integer operations only.
"""

from __future__ import annotations

import torch

from f8lab.quant.formats import int_range

_INTEGER_DTYPES = (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64)


def requantize(
    acc: torch.Tensor,
    acc_fl: int | torch.Tensor,
    out_fl: int | torch.Tensor,
    wl: int = 8,
    signed: bool = True,
) -> torch.Tensor:
    """Shift integers at fractional length ``acc_fl`` to ``out_fl`` and saturate to ``wl`` bits.

    Args:
        acc: an integer tensor (e.g. an int32 accumulator, FL = fl_x + fl_w).
        acc_fl, out_fl: ints, or integer tensors broadcastable to ``acc`` (per channel:
            shape (C, 1, 1) for an (N, C, H, W) accumulator).
        wl, signed: the output format's word length and signedness.

    Returns:
        An int32 tensor holding values in the output format's integer range.
    """
    if acc.dtype not in _INTEGER_DTYPES:
        raise TypeError(
            f"requantize takes integer tensors, got {acc.dtype}; for float values use "
            "fix_quant, or convert exact integers with .to(torch.int32)"
        )
    qmin, qmax = int_range(wl, signed)
    shift = torch.as_tensor(acc_fl, device=acc.device) - torch.as_tensor(out_fl, device=acc.device)
    if shift.is_floating_point():
        raise TypeError(f"fractional lengths must be integers, got {shift.dtype} values")
    shift = shift.long()
    wide = acc.long()  # int64: left shifts of int32 values cannot overflow
    # int64 shifts are defined up to 63 bits; |wide| <= 2**63, so past 63 every value rounds to 0
    right = shift.clamp(0, 63)
    floor = wide >> right
    remainder = wide - (floor << right)  # in [0, 2**right)
    half = torch.where(right > 0, torch.ones_like(right) << (right - 1).clamp(min=0), 0)
    round_up = (remainder > half) | ((remainder == half) & (half > 0) & (floor & 1 == 1))
    rounded = torch.where(shift > 63, 0, floor + round_up.long())
    # a left shift past 32 bits saturates any non-zero value, so 32 is as far as it needs to go
    left = (-shift).clamp(0, 32)
    shifted = torch.where(shift > 0, rounded, wide << left)
    return shifted.clamp(qmin, qmax).to(torch.int32)
