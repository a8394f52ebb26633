"""Integer-only layers: the steps an integerized F8Net model is made of (docs/method.md §6).

Values travel as ``Fixed(values, fraclen)``: integers and the fractional length they sit
at (an int, or one per channel, shaped to broadcast). The carrier dtype is int64 (pure
integer arithmetic: convolutions as integer im2col products) or float64 holding the same
integers (exact below 2**53, and fast where float convolutions are).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from f8lab.quant import int_range, requantize

INT32_MAX = 2**31 - 1


class Fixed(NamedTuple):
    values: torch.Tensor  # integers, in the carrier dtype
    fraclen: int | torch.Tensor  # the fractional length of each value (per channel: (C, 1, 1))


def _saturate32(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(-INT32_MAX, INT32_MAX)


def _conv(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int, groups: int) -> torch.Tensor:
    """conv2d of integers: float carriers use torch's kernel, int64 an integer im2col."""
    if x.is_floating_point():
        return F.conv2d(x, weight, None, stride, padding, 1, groups)
    k = weight.shape[-1]
    patches = F.pad(x, (padding,) * 4).unfold(2, k, stride).unfold(3, k, stride)  # (N, C, Ho, Wo, k, k)
    if groups == 1:
        return torch.einsum("nchwij,ocij->nohw", patches, weight)
    return torch.einsum("nchwij,cij->nchw", patches, weight[:, 0])  # depthwise


class IntInput(nn.Module):
    """The image's quantization: the one float operation, before everything else."""

    def __init__(self, wl: int, fraclen: int, signed: bool, carrier: torch.dtype) -> None:
        super().__init__()
        self.wl, self.fraclen, self.signed, self.carrier = wl, fraclen, signed, carrier

    def forward(self, x: torch.Tensor) -> Fixed:
        qmin, qmax = int_range(self.wl, self.signed)
        q = torch.round(x.double() * 2.0**self.fraclen).clamp(qmin, qmax)
        return Fixed(q.to(self.carrier), self.fraclen)


class IntRequantize(nn.Module):
    """Shift an accumulator to this tensor's format: round half to even, saturate (the
    unsigned format's lower bound is the ReLU; ``cap`` the float activation's cap)."""

    def __init__(self, wl: int, fraclen: int, signed: bool, cap: float | None) -> None:
        super().__init__()
        self.wl, self.fraclen, self.signed = wl, fraclen, signed
        self.cap = None if cap is None else int(cap * 2**fraclen)

    def forward(self, x: Fixed) -> Fixed:
        acc = x.values if not x.values.is_floating_point() else x.values.long()
        q = requantize(acc, x.fraclen, self.fraclen, self.wl, self.signed).to(x.values.dtype)
        if self.cap is not None:
            q = q.clamp(max=self.cap)
        return Fixed(q, self.fraclen)


class IntConv2d(nn.Module):
    """int8 weights, int32 bias at FL_x + FL_w, int32 accumulation."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        weight_fraclen: torch.Tensor,
        input_fraclen: int,
        stride: int,
        padding: int,
        groups: int,
    ) -> None:
        super().__init__()
        self.weight: torch.Tensor
        self.bias: torch.Tensor
        self.weight_fraclen: torch.Tensor
        self.register_buffer("weight", weight)  # (C_out, C_in/groups, k, k) int8 values
        self.register_buffer("bias", bias)  # (C_out,) int32 values
        self.register_buffer("weight_fraclen", weight_fraclen)  # () or (C_out,)
        self.input_fraclen, self.stride, self.padding, self.groups = input_fraclen, stride, padding, groups

    def forward(self, x: Fixed) -> Fixed:
        if x.fraclen != self.input_fraclen:
            raise RuntimeError(f"input at FL {x.fraclen}, this layer was built for {self.input_fraclen}")
        weight, bias = self.weight.to(x.values.dtype), self.bias.to(x.values.dtype)
        acc = _conv(x.values, weight, self.stride, self.padding, self.groups) + bias.view(1, -1, 1, 1)
        fraclen = self.input_fraclen + self.weight_fraclen
        if fraclen.dim():
            fraclen = fraclen.view(-1, 1, 1)
        return Fixed(_saturate32(acc), fraclen)


class IntAdd(nn.Module):
    """Residual addition: left-shift the addend with the smaller FL, add, saturate to int32;
    the sum keeps the larger FL.

    ``shortcut_fraclen``: the FL at which the shortcut's integers count in the sum's units.
    For an identity shortcut, its quantizer's scale is ``2**(FL_in - FL_out)`` times the
    sum's (clipping levels shared), so its integers ``q`` stand for ``q * 2**-FL_out``
    there. The 8-bit add (``residual="int8"``) first requantizes the branch with
    ``branch`` (and a projection shortcut with ``shortcut``); ``branch_fraclen`` is where
    the branch's 8-bit integers count in the sum's units.
    """

    def __init__(
        self,
        shortcut_fraclen: int | None = None,
        branch_fraclen: int | None = None,
        branch: IntRequantize | None = None,
        shortcut: IntRequantize | None = None,
    ) -> None:
        super().__init__()
        self.shortcut_fraclen, self.branch_fraclen = shortcut_fraclen, branch_fraclen
        self.branch, self.shortcut = branch, shortcut

    def forward(self, a: Fixed, b: Fixed) -> Fixed:
        if self.branch is not None:
            assert self.branch_fraclen is not None  # set with the branch (see integerize)
            a = Fixed(self.branch(a).values, self.branch_fraclen)
        if self.shortcut is not None:
            b = self.shortcut(b)
        if self.shortcut_fraclen is not None:
            b = Fixed(b.values, self.shortcut_fraclen)
        fa, fb = torch.as_tensor(a.fraclen), torch.as_tensor(b.fraclen)
        fraclen = torch.maximum(fa, fb)
        shift_a = (fraclen - fa).to(a.values.device)
        shift_b = (fraclen - fb).to(a.values.device)
        if a.values.is_floating_point():
            total = a.values * torch.exp2(shift_a.double()) + b.values * torch.exp2(shift_b.double())
        else:
            total = (a.values << shift_a) + (b.values << shift_b)
        return Fixed(_saturate32(total), fraclen if fraclen.dim() else int(fraclen))


class IntAccumulatorAdd(IntAdd):
    """F8Net's layout: the sum of two accumulators as they are (neither term rescaled; the
    layout's fake-quant add is the plain sum), aligned to the larger FL, saturated to int32."""


def _square(value: int | tuple[int, ...], what: str) -> int:
    """A pooling size given once or as equal entries (square windows only)."""
    if isinstance(value, int):
        return value
    if len(set(value)) != 1:
        raise ValueError(f"max pooling with {what}={value} is not supported: square windows only")
    return value[0]


class IntReLU(nn.Module):
    """ReLU of integers (an accumulator's, in F8Net's layout); the FL is unchanged."""

    def forward(self, x: Fixed) -> Fixed:
        return Fixed(x.values.clamp(min=0), x.fraclen)


def round_divide(numerator: torch.Tensor, denominator: int) -> torch.Tensor:
    """``numerator / denominator`` rounded half to even, exactly, for int64 tensors."""
    quotient = torch.div(numerator, denominator, rounding_mode="floor")
    twice_rest = 2 * (numerator - quotient * denominator)
    up = (twice_rest > denominator) | ((twice_rest == denominator) & (quotient % 2 == 1))
    return quotient + up.long()


class IntPooledRequantize(nn.Module):
    """F8Net's pool before its classifier, and the classifier input's quantization: the
    feature map's int32 sum over H·W, divided by H·W (``pool="mean"``, rounded half to even
    as the quantizer rounds the mean) or taken at 2**-6 (``pool="sum_shift"``), requantized
    to the classifier's input format. Out: (N, C, 1, 1)."""

    def __init__(self, wl: int, fraclen: int, pool: str, shift_bits: int) -> None:
        super().__init__()
        self.wl, self.fraclen, self.pool, self.shift_bits = wl, fraclen, pool, shift_bits

    def forward(self, x: Fixed) -> Fixed:
        if torch.as_tensor(x.fraclen).dim():
            raise RuntimeError("F8Net's pooled classifier reads a per-layer format (one FL)")
        fraclen = int(x.fraclen)
        total = x.values.long().sum(dim=(2, 3), keepdim=True)
        if self.pool == "sum_shift":
            q = requantize(total, fraclen + self.shift_bits, self.fraclen, self.wl, signed=False)
        else:
            count, shift = x.values.shape[2] * x.values.shape[3], self.fraclen - fraclen
            scaled = total << shift if shift >= 0 else total
            mean = round_divide(scaled, count if shift >= 0 else count << -shift)
            q = mean.clamp(*int_range(self.wl, signed=False))
        return Fixed(q.to(x.values.dtype), self.fraclen)


class IntMaxPool2d(nn.Module):
    """Max pooling on integers; the FL is unchanged."""

    def __init__(self, pool: nn.MaxPool2d) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = (
            _square(pool.kernel_size, "kernel_size"),
            _square(pool.stride, "stride"),
            _square(pool.padding, "padding"),
        )

    def forward(self, x: Fixed) -> Fixed:
        low = torch.iinfo(torch.int64).min if not x.values.is_floating_point() else float("-inf")
        padded = F.pad(x.values, (self.padding,) * 4, value=low)
        windows = padded.unfold(2, self.kernel, self.stride).unfold(3, self.kernel, self.stride)
        return Fixed(windows.amax(dim=(-1, -2)), x.fraclen)


class IntLinear(nn.Module):
    """The classifier: the int32 sum over H·W (1/(H·W) is in the weight), then an integer
    matrix product; the logits are aligned to one FL by left shifts."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        weight_fraclen: torch.Tensor,
        input_fraclen: int,
        pool_size: int,
    ) -> None:
        super().__init__()
        self.weight: torch.Tensor
        self.bias: torch.Tensor
        self.weight_fraclen: torch.Tensor
        self.register_buffer("weight", weight)  # (classes, C) int8 values
        self.register_buffer("bias", bias)  # (classes,) int32 values
        self.register_buffer("weight_fraclen", weight_fraclen)  # () or (classes,)
        self.input_fraclen, self.pool_size = input_fraclen, pool_size
        self.output_fraclen = int(input_fraclen + weight_fraclen.max())

    def forward(self, x: Fixed) -> Fixed:
        size = x.values.shape[2] * x.values.shape[3]
        if size != self.pool_size:
            raise RuntimeError(
                f"feature map of {size} positions; this model was integerized "
                f"for {self.pool_size}: integerize it with an input of this size"
            )
        pooled = x.values.sum(dim=(2, 3))
        acc = pooled @ self.weight.to(pooled.dtype).T + self.bias.to(pooled.dtype)
        shift = (self.output_fraclen - self.input_fraclen - self.weight_fraclen).to(acc.device)
        acc = acc * torch.exp2(shift.double()) if acc.is_floating_point() else acc << shift
        return Fixed(_saturate32(acc), self.output_fraclen)
