"""Fake fixed-point quantization ``Q_FL(x)`` with its straight-through gradient (docs/method.md §1).

    q = clamp(round_half_to_even(x * 2**fl), qmin, qmax)        Q_FL(x) = q * 2**-fl

Multiplying by a power of two is exact in floating point, so the only rounding is the one
the formula asks for. Gradient rule (straight-through estimator): ``dQ/dx = 1`` where
``qmin <= round(x * 2**fl) <= qmax`` and 0 where the value was clamped. The ends of the
range count as inside (torch.fake_quantize's convention; the original F8Net code passed
gradient only strictly inside). The fractional length receives no gradient.
"""

from __future__ import annotations

import torch

from f8lab.quant.formats import check_exact_carrier, check_fraclen, int_range


class _FixQuant(torch.autograd.Function):
    """``Q_FL`` with the straight-through gradient; ``up = 2**fl`` and ``down = 2**-fl`` are
    floats or tensors that broadcast against ``x`` (per channel)."""

    @staticmethod
    def forward(ctx, x, up, down, qmin: int, qmax: int):
        q = torch.mul(x, up).round_()  # exact scaling, then round half to even
        clamped = q.clamp(qmin, qmax)
        # always saved: a compiled graph may not see ctx.needs_input_grad as eager does
        ctx.save_for_backward(clamped == q)  # bool mask, True inside the range (ends included)
        return clamped.mul_(down)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None


def fix_quant(
    x: torch.Tensor,
    wl: int,
    fl: int | torch.Tensor,
    signed: bool,
    dim: int | None = None,
) -> torch.Tensor:
    """Quantize ``x`` to the fixed-point grid ``2**-fl`` with ``wl`` bits (fake quantization).

    Args:
        x: a floating-point tensor whose dtype holds the format's integers exactly
            (float16: up to 12 bits signed, 11 unsigned; bfloat16: 9 and 8).
        wl: word length, 2..16.
        fl: fractional length: an int, a 0-dim tensor, or (with ``dim``) a tensor with
            one integer value per slice of ``x`` along ``dim``.
        signed: signed range ``±(2**(wl-1) - 1)``, or unsigned ``0..2**wl - 1``; the
            unsigned quantizer also performs a ReLU.
        dim: the channel dimension for per-channel fractional lengths; None for one
            fractional length for the whole tensor.

    Returns:
        A tensor like ``x`` whose values lie on the grid, with the straight-through gradient.
    """
    if not x.is_floating_point():
        raise TypeError(f"fix_quant takes a floating-point tensor, got {x.dtype}")
    qmin, qmax = int_range(wl, signed)
    fl = check_fraclen(fl, wl, signed)
    if not isinstance(fl, torch.Tensor):
        return _quantize(x, 2.0**fl, 2.0**-fl, qmin, qmax)
    fl = fl.to(device=x.device, dtype=x.dtype)
    if dim is None:
        if fl.numel() != 1:
            raise ValueError(
                f"got {fl.numel()} fractional lengths but dim=None; pass the channel dim "
                "for per-channel formats"
            )
        fl = fl.reshape(())
    else:
        axis = dim % x.dim()
        if fl.numel() not in (1, x.shape[axis]):
            raise ValueError(
                f"per-channel fractional lengths have shape {tuple(fl.shape)}, but x has "
                f"{x.shape[axis]} channels along dim {dim}"
            )
        fl = fl.reshape([-1 if d == axis else 1 for d in range(x.dim())])
    return quantize_on_grid(x, fl, qmin, qmax)


def quantize_on_grid(x: torch.Tensor, fl: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    """``Q_FL(x)`` for a floating-point ``fl`` that already broadcasts against ``x`` and holds
    valid fractional lengths: the layers' path, with no checks and so no host
    synchronisation. A NaN ``fl`` (from a tensor holding NaN or Inf) gives NaN values.
    ``exp2`` of an integer-valued float is an exact power of two."""
    return _quantize(x, torch.exp2(fl), torch.exp2(-fl), qmin, qmax)


def _quantize(x: torch.Tensor, up, down, qmin: int, qmax: int) -> torch.Tensor:
    """With the straight-through gradient where one is needed; plain operations (no
    mask) where none is (evaluation, integer export)."""
    check_exact_carrier(x.dtype, qmin, qmax)
    if x.requires_grad and torch.is_grad_enabled():
        return _FixQuant.apply(x, up, down, qmin, qmax)
    return torch.mul(x, up).round_().clamp_(qmin, qmax).mul_(down)
