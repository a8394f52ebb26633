"""Fake fixed-point quantization ``Q_FL(x)`` with its straight-through gradient (METHOD.md §1).

    q = clamp(round_half_to_even(x * 2**fl), qmin, qmax)        Q_FL(x) = q * 2**-fl

With a power-of-two scale, ``x * 2**fl`` and ``q * 2**-fl`` are exact in floating point,
so this is PyTorch's fused affine fake quantization at scale ``2**-fl`` and zero point 0,
whose kernel rounds half to even. f8lab runs that kernel: one pass over memory for the
value and the gradient mask together.

Gradient rule (straight-through estimator): ``dQ/dx = 1`` where
``qmin <= round(x * 2**fl) <= qmax`` and 0 where the value was clamped. The ends of the
range count as inside (torch's convention; the original F8Net code passed gradient only
strictly inside). The fractional length receives no gradient.
"""

from __future__ import annotations

import torch

from f8lab.quant.formats import check_fraclen, int_range


def _scales(fl: torch.Tensor) -> torch.Tensor:
    # (C,) float32 scales 2**-fl; exact for every valid fractional length
    return torch.exp2(-fl.to(torch.float32))


def fix_quant(
    x: torch.Tensor,
    wl: int,
    fl: int | torch.Tensor,
    signed: bool,
    dim: int | None = None,
) -> torch.Tensor:
    """Quantize ``x`` to the fixed-point grid ``2**-fl`` with ``wl`` bits (fake quantization).

    Args:
        x: a floating-point tensor.
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
    if dim is None:
        if not isinstance(fl, torch.Tensor):
            return torch.fake_quantize_per_tensor_affine(x, 2.0**-fl, 0, qmin, qmax)
        if fl.numel() != 1:
            raise ValueError(
                f"got {fl.numel()} fractional lengths but dim=None; pass the channel dim "
                "for per-channel formats"
            )
        scale = _scales(fl.to(x.device)).reshape(())
        zero_point = torch.zeros((), dtype=torch.int32, device=x.device)
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)
    axis = dim % x.dim()
    channels = x.shape[axis]
    fl = torch.as_tensor(fl, device=x.device).reshape(-1)
    if fl.numel() == 1:
        fl = fl.expand(channels)
    if fl.shape != (channels,):
        raise ValueError(
            f"per-channel fractional lengths have shape {tuple(fl.shape)}, but x has "
            f"{channels} channels along dim {dim}"
        )
    zero_points = torch.zeros(channels, dtype=torch.int32, device=x.device)
    return torch.fake_quantize_per_channel_affine(
        x, _scales(fl).contiguous(), zero_points, axis, qmin, qmax
    )
