"""Fixed-point arithmetic worked through with numbers (docs/method.md §1, §4, §6).

``fixed_point_table`` puts a few values through one format; ``affine_multiplier`` writes a
real rescale factor as the int32 multiplier and shift that an affine integer network
applies; ``integer_steps`` records every step of an integer model on an image, so that one
layer can be recomputed by hand (``conv_patch``, ``fold_steps``, ``reader_of``) and set
beside its affine counterpart (``affine_counterpart``); ``operation_counts`` counts a
whole integer network's operations by kind and width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from f8lab.export.integer_ops import Fixed, IntAdd, IntConv2d, IntLinear, IntRequantize
from f8lab.export.integerize import IntegerModel
from f8lab.models import forward_hooks
from f8lab.models.describe import fraclens
from f8lab.nn import FixConv2d
from f8lab.nn.conv import running_statistics
from f8lab.quant import fix_quant, int_range

INT32_BITS = 31  # an affine multiplier is a signed 32-bit integer in [2**30, 2**31)


def fixed_point_table(values, wl: int, fl: int, signed: bool) -> pd.DataFrame:
    """Each value through the format ``(wl, fl, signed)``: ``x · 2^FL``, the integer it is
    stored as (rounded half to even, clamped to the range), the value that integer stands
    for, the error, and whether the value was clamped."""
    x = torch.as_tensor(values, dtype=torch.float64).flatten()
    scaled = x * 2.0**fl
    q = fix_quant(x, wl, fl, signed)
    lo, hi = int_range(wl, signed)
    return pd.DataFrame(
        {
            "x": x.numpy(),
            "x·2^FL": scaled.numpy(),
            "integer": (q * 2.0**fl).round().long().numpy(),
            "value (integer·2^-FL)": q.numpy(),
            "error": (q - x).numpy(),
            "clamped": ((scaled.round() < lo) | (scaled.round() > hi)).numpy(),
        }
    )


def affine_multiplier(m: float) -> tuple[int, int]:
    """``m ≈ m0 · 2^-shift`` with ``m0`` an integer in ``[2^30, 2^31)``: the normalised
    int32 multiplier (and right shift) with which an affine integer network applies the
    real rescale ``m = s_in · s_w / s_out`` to each accumulator (gemmlowp, TFLite, torch.ao).
    The relative rounding error is below ``2^-31``."""
    if not (math.isfinite(m) and m > 0):
        raise ValueError(f"a rescale factor is a finite positive number, got {m}")
    mantissa, exponent = math.frexp(m)  # m = mantissa · 2**exponent, mantissa in [0.5, 1)
    m0, shift = round(mantissa * 2**INT32_BITS), INT32_BITS - exponent
    if m0 == 2**INT32_BITS:  # the mantissa rounded up to 1
        m0, shift = m0 // 2, shift - 1
    return m0, shift


@dataclass(frozen=True)
class IntegerStep:
    """One step of an integer model in one forward pass: its module, the ``Fixed`` values
    it read and the ``Fixed`` value it wrote."""

    name: str
    module: nn.Module
    inputs: tuple[Fixed, ...]
    output: Fixed


def integer_steps(integer: IntegerModel, images: torch.Tensor) -> dict[str, IntegerStep]:
    """Every step of ``integer`` (quantize the image, convolutions, requantizations, adds,
    pooling, the classifier) on ``images``, in the order they ran, by module name."""
    steps: dict[str, IntegerStep] = {}
    names = {module: name for name, module in integer.body.named_modules()}

    def record(module, inputs, output):
        steps[names[module]] = IntegerStep(names[module], module, tuple(inputs), output)

    integer_layers = [module for module in names if type(module).__module__ == IntConv2d.__module__]
    with forward_hooks(integer_layers, record), torch.no_grad():
        integer(images)
    return steps


def reader_of(steps: dict[str, IntegerStep], name: str) -> IntegerStep:
    """The first step after ``name`` that reads the values ``name`` wrote."""
    written = steps[name].output.values
    order = list(steps)
    for later in order[order.index(name) + 1 :]:
        if any(value.values is written for value in steps[later].inputs):
            return steps[later]
    raise ValueError(f"no step reads the output of {name}")


def conv_patch(step: IntegerStep, row: int, col: int, image: int = 0) -> torch.Tensor:
    """The input integers that a convolution step multiplies to give its output at
    ``(row, col)``: shape ``(C_in, k, k)``, zeros where the window covers the padding."""
    conv = step.module
    if not isinstance(conv, IntConv2d):
        raise TypeError(f"{step.name} is a {type(conv).__name__}, not a convolution step")
    k = conv.weight.shape[-1]
    x = F.pad(step.inputs[0].values[image], (conv.padding,) * 4)
    top, left = row * conv.stride, col * conv.stride
    return x[:, top : top + k, left : left + k]


def fold_steps(conv: FixConv2d, channel: int) -> pd.Series:
    """How one output channel of a trained conv+BN layer (eval mode, after a forward pass)
    becomes integers, as a Series:

    - ``α_in, levels_in, FL_in, s_in``: the input's clipping level, the number of levels
      of its master quantizer, its FL and its scale ``s_in = 2^FL_in · α_in / levels_in``;
      ``α_out, levels_out, FL_out, s_out`` the same for the tensor the layer writes;
    - ``W``: the channel's weight of largest folded magnitude, before folding; ``γ/σ``:
      BatchNorm's gain; ``W~ = W · γ/σ · s_in / s_out``; ``FL_w`` the channel's weight FL
      and ``q_w = round(W~ · 2^FL_w)`` the 8-bit integer;
    - ``b~ = (β − γ·μ/σ) / s_out`` and ``q_b = round(b~ · 2^(FL_in + FL_w))``, the bias on
      the accumulator's grid.
    """
    bn, output_quant = conv.batch_norm, conv.output_quant
    if output_quant is None:
        raise ValueError("fold_steps takes a fixed-point convolution that writes a tensor")
    with torch.no_grad():
        s_in, s_out = (float(s) for s in conv.scales())
        mean, var = running_statistics(bn)
        gain = (bn.weight / torch.sqrt(var + bn.eps))[channel]
        weight, bias = conv.folded(None)
    wl, fraclens_w = conv.weight_quant.wl, conv.weight_quant.fraclen
    fl_w = int(fraclens_w[channel] if fraclens_w.dim() else fraclens_w)
    fl_in = int(conv.input_quant.running_fraclen())
    where = weight[channel].abs().argmax()
    w = weight[channel].flatten()[where]
    return pd.Series(
        {
            "α_in": conv.input_quant.clip_level().item(),
            "levels_in": conv.input_quant.master.levels(),
            "FL_in": fl_in,
            "s_in": s_in,
            "α_out": output_quant.clip_level().item(),
            "levels_out": output_quant.master.levels(),
            "FL_out": int(output_quant.running_fraclen()),
            "s_out": s_out,
            "W": conv.weight[channel].flatten()[where].item(),
            "γ/σ": gain.item(),
            "W~": w.item(),
            "FL_w": fl_w,
            "q_w": int(fix_quant(w, wl, fl_w, True) * 2.0**fl_w),
            "b~": bias[channel].item(),
            "q_b": int(torch.round(bias[channel] * 2.0 ** (fl_in + fl_w))),
        },
        name=f"channel {channel}",
        dtype=object,
    )


def affine_counterpart(conv: FixConv2d, step: IntegerStep, wl: int = 8) -> pd.Series:
    """The same layer as an affine integer network would run it (min/max-calibrated
    unsigned input and output with zero points, ReLU fused when the output is unsigned;
    symmetric per-tensor weights): its scales, the real rescale ``M = s_x·s_w/s_y`` of every
    accumulator and the int32 multiplier and shift that apply it; beside them, the
    fixed-point layer's rescale, a power of two (a shift). ``step`` is the convolution's
    step in ``integer_steps``."""
    output_quant = conv.output_quant
    if output_quant is None:
        raise ValueError("affine_counterpart takes a fixed-point convolution that writes a tensor")
    with torch.no_grad():
        s_in, s_out = (float(s) for s in conv.scales())
        weight = conv.folded(None)[0] * s_out / s_in  # W·γ/σ: the real folded weight
    fixed_in, acc = step.inputs[0], step.output
    fl_acc = torch.as_tensor(acc.fraclen).double()
    x = fixed_in.values.double() * 2.0**-fixed_in.fraclen * s_in  # the layer's real input
    y = acc.values.double() * torch.exp2(-fl_acc) * s_out  # its real output
    if not output_quant.signed:
        y = y.clamp(min=0)
    top = 2**wl - 1
    s_x, s_y = (float(v.max() - v.min().clamp(max=0)) / top for v in (x, y))
    s_w = float(weight.abs().max()) / (2 ** (wl - 1) - 1)
    m = s_x * s_w / s_y
    m0, shift = affine_multiplier(m)
    shifts = (fl_acc - int(output_quant.running_fraclen())).long().flatten().unique()
    fixed_shift = fraclens(shifts[0] if len(shifts) == 1 else shifts)
    return pd.Series(
        {
            "affine s_x (input scale)": s_x,
            "affine z_x (input zero point)": round(-min(float(x.min()), 0) / s_x),
            "affine s_w (weight scale)": s_w,
            "affine s_y (output scale)": s_y,
            "affine z_y (output zero point)": round(-min(float(y.min()), 0) / s_y),
            "affine M = s_x·s_w/s_y": m,
            "affine M0 (int32 multiplier)": m0,
            "affine right shift": shift,
            "affine M0·2^-shift": m0 * 2.0**-shift,
            "fixed point: right shift FL_acc − FL_out": fixed_shift,
        },
        name=step.name,
        dtype=object,
    )


OPERATION_COLUMNS = ["8-bit multiplies", "32-bit adds", "shifts", "affine: 32-bit multiplies"]


def operation_counts(steps: dict[str, IntegerStep]) -> pd.DataFrame:
    """The integer operations of one forward pass (the steps of ``integer_steps`` on one
    image), by kind of step, and in total.

    ``8-bit multiplies``: the products of 8-bit inputs and weights; ``32-bit adds``: their
    accumulation into int32 (with the bias), the classifier's pooling sum and the residual
    adds; ``shifts``: the requantizations' rounding shifts and the alignment of residual
    terms. ``affine: 32-bit multiplies``: what the same network costs as an affine integer
    network (the form onnxruntime's quantize_static writes), where every convolution or
    classifier output is rescaled by an int32 multiplier and an 8-bit add rescales both of
    its inputs: one multiply per output of a convolution or the classifier, two per output
    of a residual add. Multiplies and adds count per image.
    """
    rows = []
    for step in steps.values():
        module, out = step.module, step.output.values
        outputs = out[0].numel()  # per image
        if isinstance(module, IntConv2d):
            per_output = module.weight[0].numel()
            kind = "depthwise convolution" if module.groups > 1 else "convolution"
            rows.append(
                dict(
                    kind=kind,
                    **dict(zip(OPERATION_COLUMNS, (outputs * per_output, outputs * per_output, 0, outputs))),
                )
            )
        elif isinstance(module, IntLinear):
            pooled = step.inputs[0].values[0].numel()
            macs = module.weight.numel()
            aligned = module.output_fraclen - module.input_fraclen - module.weight_fraclen
            shifted = int(torch.broadcast_to(aligned != 0, (outputs,)).sum())  # per-class FLs
            rows.append(
                dict(
                    kind="classifier", **dict(zip(OPERATION_COLUMNS, (macs, pooled + macs, shifted, outputs)))
                )
            )
        elif isinstance(module, IntRequantize):
            rows.append(dict(kind="requantize", **dict(zip(OPERATION_COLUMNS, (0, 0, outputs, 0)))))
        elif isinstance(module, IntAdd):
            rows.append(
                dict(
                    kind="residual add",
                    **dict(zip(OPERATION_COLUMNS, (0, outputs, _aligning_shifts(step), 2 * outputs))),
                )
            )
    table = pd.DataFrame(rows).groupby("kind", sort=False).sum()
    table.loc["total"] = table.sum()
    return table


def _aligning_shifts(step: IntegerStep) -> int:
    """How many values of one image an integer add shifts to align its terms: those of the
    term (or, per channel, the channels) at the smaller FL."""
    add, (a, b) = step.module, step.inputs
    assert isinstance(add, IntAdd)
    fa = add.branch_fraclen if add.branch is not None else a.fraclen
    fb = (
        add.shortcut_fraclen
        if add.shortcut_fraclen is not None
        else (add.shortcut.fraclen if add.shortcut is not None else b.fraclen)
    )
    target = step.output.fraclen
    shape = step.output.values[0].shape
    return sum(
        int(torch.broadcast_to(torch.as_tensor(target) != torch.as_tensor(f), shape).sum()) for f in (fa, fb)
    )
