"""ONNX export: the integer model for onnxruntime's int8 kernels, as integer-valued floats,
or the float model (docs/method.md §6).

The architecture's own forward is run on symbols: every layer, instead of computing, adds
its ONNX nodes, so every model f8lab builds exports. Formats:

- ``onnx-int8``: every 8-bit tensor travels as uint8 (a signed one with zero point 128);
  QuantizeLinear for the image, QLinearConv (int8 weights, int32 bias, power-of-two
  scales) for the convolutions. Where a residual add needs a convolution's accumulator,
  the shortcut joins that QLinearConv's input as extra channels read by centre taps (the
  identity inverted, taps summing to -2**k; a projection's input subsampled by its
  stride, its weights as taps), so the sum forms in the int32 accumulator, while the
  added channels are at most SHORTCUT_CHANNELS_LIMIT times the convolution's own;
  otherwise the convolutions are QDQ (DequantizeLinear of the input, the int8 weights and
  the int32 bias) around a float Conv, and the add runs in real units. Max pooling on
  8-bit integers; the classifier sums in int32 and multiplies exactly (_digit_matmul).
  onnxruntime requantizes and runs the float Conv in float32: equal to the integer model
  wherever the accumulators stay below 2**24.
- ``onnx-integer-float``: the same integers carried in float32 (Conv, Mul by 2**-n, Round,
  Clip), as the original code offered.
- ``onnx-float``: the float network (BatchNorm, ReLU, average pool), for comparison.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from f8lab.export.integer_ops import (
    INT32_MAX,
    IntAdd,
    IntConv2d,
    IntInput,
    IntLinear,
    IntMaxPool2d,
    IntRequantize,
)
from f8lab.export.integerize import integerize
from f8lab.export.layer_table import layer_table
from f8lab.models import build_model, load_float_state_dict
from f8lab.nn import Add
from f8lab.quant import int_range

FORMATS = ("onnx-int8", "onnx-integer-float", "onnx-float")
OPSET = 17
# A residual conv takes its shortcut in as extra input channels (see _join) while these
# are at most this many times its own input channels. Measured at 224x224, 2 threads,
# against the float Conv path for the same adds: ResNet-50, whose bottleneck's last 1x1
# conv reads a quarter of the identity's channels (ratio 4), 18.1 vs 20.2 ms at batch 1,
# 131 vs 165 ms at batch 8; ResNet-18 at batch 1 with FLs that make its 3x3 joins take
# four copies (ratio 4, 5 of its 8 adds) 11.8 vs 11.2 ms, two copies 9.7 vs 13.3 ms, one
# copy 7.4 vs 13.1 ms.
SHORTCUT_CHANNELS_LIMIT = 4


@dataclass
class Sym:
    """A tensor of the graph being built: its name, FL and form (``q8``: 8-bit integers,
    as uint8; ``real``: an accumulator's real value in float32; ``float``: integers in a
    float type; ``conv``: a convolution not emitted yet, ``pending`` = (layer, input,
    None or the shortcut that joins its accumulator: (shortcut, taps, bias) from _join);
    ``add8``: an 8-bit add not emitted yet, ``pending`` = its two ``q8`` terms)."""

    name: str
    fraclen: int | np.ndarray = 0
    form: str = "float"
    signed: bool = False
    pending: tuple | None = None


@dataclass
class Graph:
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    count: int = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value, dtype, hint: str = "c") -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str = "", **attributes) -> str:
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attributes))
        return out


def _pow2(fraclen) -> np.ndarray:
    return np.exp2(-np.asarray(fraclen, dtype=np.float64)).astype(np.float32)


def _channel_shape(values: np.ndarray) -> np.ndarray:
    return values.reshape(1, -1, 1, 1) if values.ndim else values


# ---------------------------------------------------------------- onnx-int8 emitters

def _zero_point(signed: bool) -> int:
    """8-bit tensors travel as uint8: a signed one with zero point 128."""
    return 128 if signed else 0


def _q8_params(graph: Graph, fraclen, signed: bool) -> list[str]:
    return [graph.const(2.0 ** -fraclen, np.float32, "scale"),
            graph.const(_zero_point(signed), np.uint8, "zero")]


def _int8_input(self: IntInput, graph: Graph, x: Sym) -> Sym:
    q = graph.op("QuantizeLinear", [x.name, *_q8_params(graph, self.fraclen, self.signed)], "input_q")
    return _clip_q8(graph, Sym(q, self.fraclen, "q8", self.signed), self.wl, None)


def _clip_q8(graph: Graph, x: Sym, wl: int, cap: int | None) -> Sym:
    """Saturate to the format's range, which uint8 is wider than: ±(2**(wl-1) - 1) signed
    (the uint8 form reaches -128), 0..2**wl - 1 unsigned, and apply a cap."""
    qmin, qmax = int_range(wl, x.signed)
    if cap is not None:
        qmax = min(qmax, cap)
    if not x.signed and qmax >= 255:
        return x
    zero = _zero_point(x.signed)
    low, high = graph.const(zero + qmin, np.uint8), graph.const(zero + qmax, np.uint8)
    return Sym(graph.op("Clip", [x.name, low, high], "clip"), x.fraclen, "q8", x.signed)


def _int8_conv(self: IntConv2d, graph: Graph, x: Sym) -> Sym:
    if x.form != "q8":
        raise ValueError("a convolution must read an 8-bit tensor")
    return Sym("", self.input_fraclen + self.weight_fraclen.numpy(), "conv", pending=(self, x, None))


def _conv_attributes(conv: IntConv2d) -> dict:
    k = conv.weight.shape[-1]
    return dict(kernel_shape=[k, k], strides=[conv.stride] * 2, pads=[conv.padding] * 4,
                group=conv.groups)


def _split(matrix: np.ndarray, copies: int) -> np.ndarray:
    """``copies`` integer arrays that sum to ``matrix``, each entry at most
    ceil(|entry| / copies) in magnitude."""
    quotient = np.trunc(matrix / copies).astype(np.int64)
    remainder = matrix - quotient * copies
    return np.stack([quotient + np.sign(remainder) * (j < np.abs(remainder)) for j in range(copies)])


def _join(conv: IntConv2d, x: Sym, addend: Sym) -> tuple[Sym, np.ndarray, np.ndarray] | None:
    """How ``addend`` (an identity shortcut, or a projection convolution not emitted yet)
    joins ``conv``'s int32 accumulator inside its QLinearConv, or None where it cannot or
    would not pay.

    Aligned to the accumulator's FL, the addend is ``M @ a``: M = 2**k I for an identity
    (k = FL_acc - FL_shortcut), the projection's weight times 2**d for a projection (d =
    FL_acc - FL_projection). It comes in as extra input channels read by centre taps: the
    identity inverted (255 - u, so that taps of -128 serve k = 7), the projection's input
    subsampled by its stride; M is split over ``copies`` copies of those channels so that
    every tap fits int8. Returns the addend, the taps (copies, C_out, C_addend) and what
    the bias gains (C_out,), where the copies' channels stay within SHORTCUT_CHANNELS_LIMIT
    times the convolution's own input channels.
    """
    size = conv.weight.shape[-1]
    if conv.groups != 1 or conv.stride != 1 or conv.padding != size // 2:
        return None
    channels = conv.weight.shape[0]
    shift = np.broadcast_to(x.fraclen + conv.weight_fraclen.numpy() - addend.fraclen, (channels,))
    if np.any(shift < 0):
        return None
    scale = np.exp2(shift).astype(np.int64)
    if addend.form == "q8":
        matrix, limit = -np.diag(scale), 128
        bias = scale * (255 - _zero_point(addend.signed) - _zero_point(x.signed))
    else:
        projection, source, joined = addend.pending
        if joined is not None or projection.groups != 1 or projection.weight.shape[-1] != 1 \
                or projection.padding != 0 or source.signed != x.signed:
            return None
        matrix = projection.weight.numpy()[:, :, 0, 0].astype(np.int64) * scale[:, None]
        bias, limit = projection.bias.numpy().astype(np.int64) * scale, 127
    copies = max(1, -(-int(np.abs(matrix).max()) // limit))
    if copies * matrix.shape[1] > SHORTCUT_CHANNELS_LIMIT * conv.weight.shape[1]:
        return None
    if np.abs(conv.bias.numpy().astype(np.int64) + bias).max() > INT32_MAX:
        return None
    return addend, _split(matrix, copies), bias


def _qlinear_conv(graph: Graph, conv: IntConv2d, x: Sym, joined: tuple | None, out_fraclen: int,
                  signed: bool) -> str:
    """QLinearConv; with a joined shortcut, the exact residual sum inside it (see _join)."""
    w_fl = conv.weight_fraclen.numpy()
    weight, bias, name = conv.weight.numpy().astype(np.int64), conv.bias.numpy().astype(np.int64), x.name
    if joined is not None:
        addend, taps, extra_bias = joined
        copies, channels, width = taps.shape
        centre = weight.shape[-1] // 2
        extra = np.zeros((channels, copies * width) + weight.shape[2:], np.int64)
        extra[:, :, centre, centre] = np.concatenate(list(taps), axis=1)
        weight, bias = np.concatenate([weight, extra], axis=1), bias + extra_bias
        if addend.form == "q8":
            feed = graph.op("Sub", [graph.const(255, np.uint8), addend.name], "inverted")
        else:
            projection, source, _ = addend.pending
            feed = source.name if projection.stride == 1 else graph.op("Slice", [
                source.name, graph.const([0, 0], np.int64), graph.const([2**62] * 2, np.int64),
                graph.const([2, 3], np.int64), graph.const([projection.stride] * 2, np.int64)], "strided")
        name = graph.op("Concat", [x.name] + [feed] * copies, "with_addend", axis=1)
    inputs = [
        name, *_q8_params(graph, x.fraclen, x.signed),
        graph.const(weight.astype(np.int8), np.int8, "w"), graph.const(_pow2(w_fl), np.float32),
        graph.const(np.zeros(w_fl.shape, np.int8), np.int8),
        *_q8_params(graph, out_fraclen, signed),
        graph.const(bias.astype(np.int32), np.int32, "b"),
    ]
    return graph.op("QLinearConv", inputs, "qconv", **_conv_attributes(conv))


def _dequantize(graph: Graph, x: Sym) -> Sym:
    """An 8-bit tensor's real values in float32 (exact: 8-bit integers times 2**-FL)."""
    real = graph.op("DequantizeLinear", [x.name, *_q8_params(graph, x.fraclen, x.signed)], "real")
    return Sym(real, x.fraclen, "real")


def _qdq_conv(graph: Graph, conv: IntConv2d, x: Sym) -> Sym:
    """DequantizeLinear, Conv, in real units: the accumulator times 2**-FL_acc, exact in
    float32 while it stays below 2**24 (int8 weights, int32 bias)."""
    w_fl = conv.weight_fraclen.numpy()
    acc_fl = x.fraclen + w_fl
    axis = {"axis": 0} if np.ndim(w_fl) else {}
    weight = graph.op("DequantizeLinear", [
        graph.const(conv.weight.numpy().astype(np.int8), np.int8, "w"),
        graph.const(_pow2(w_fl), np.float32), graph.const(np.zeros(w_fl.shape, np.int8), np.int8)],
        "w_real", **axis)
    bias = graph.op("DequantizeLinear", [
        graph.const(conv.bias.numpy().astype(np.int32), np.int32, "b"),
        graph.const(_pow2(acc_fl) * np.ones(conv.bias.shape, np.float32), np.float32),
        graph.const(np.zeros(conv.bias.shape, np.int32), np.int32)], "b_real", axis=0)
    out = graph.op("Conv", [_dequantize(graph, x).name, weight, bias], "conv", **_conv_attributes(conv))
    return Sym(out, acc_fl, "real")


def _as_real(graph: Graph, x: Sym) -> Sym:
    if x.form == "add8":
        return _real_sum(graph, *(_dequantize(graph, term) for term in x.pending))
    if x.form == "conv":
        conv, source, joined = x.pending
        acc = _qdq_conv(graph, conv, source)
        return acc if joined is None else _real_sum(graph, acc, _as_real(graph, joined[0]))
    if x.form == "q8":
        return _dequantize(graph, x)
    return x


def _int8_requantize(self: IntRequantize, graph: Graph, x: Sym) -> Sym:
    if x.form == "conv":
        out = _qlinear_conv(graph, *x.pending, self.fraclen, self.signed)
    elif x.form == "add8":  # onnxruntime's 8-bit add: round half to even of the exact sum
        a, b = x.pending
        out = graph.op("QLinearAdd", [a.name, *_q8_params(graph, a.fraclen, a.signed),
                                      b.name, *_q8_params(graph, b.fraclen, b.signed),
                                      *_q8_params(graph, self.fraclen, self.signed)],
                       "qadd", domain="com.microsoft")
    else:
        params = _q8_params(graph, self.fraclen, self.signed)
        out = graph.op("QuantizeLinear", [_as_real(graph, x).name, *params], "q")
    return _clip_q8(graph, Sym(out, self.fraclen, "q8", self.signed), self.wl, self.cap)


def _shortcut(self: IntAdd, b: Sym) -> Sym:
    """The shortcut at the FL its integers count at in the sum (see IntAdd)."""
    return b if self.shortcut_fraclen is None else replace(b, fraclen=self.shortcut_fraclen)


def _real_sum(graph: Graph, a: Sym, b: Sym) -> Sym:
    fl = np.maximum(np.asarray(a.fraclen), np.asarray(b.fraclen))
    return Sym(graph.op("Add", [a.name, b.name], "sum"), fl, "real")


def _eight_bit_terms(self: IntAdd, a: Sym, b: Sym) -> tuple[Sym, Sym]:
    """The 8-bit add's terms (residual="int8"), requantized by the add's own steps (their
    emitters add the nodes) and placed at the FLs they count at in the sum."""
    a = replace(self.branch(a), fraclen=self.branch_fraclen)
    if self.shortcut is not None:
        b = self.shortcut(b)
    return a, _shortcut(self, b)


def _int8_add(self: IntAdd, graph: Graph, a: Sym, b: Sym) -> Sym:
    """The 8-bit add (residual="int8"): two 8-bit tensors, added by the QLinearAdd that the
    next requantization emits. The exact integer add (residual="int32"): inside the
    branch's QLinearConv where the shortcut (identity or projection) joins it cheaply,
    else in real units (both terms are multiples of 2**-FL_sum)."""
    if self.branch is not None:
        a, b = _eight_bit_terms(self, a, b)
        fl = np.maximum(np.asarray(a.fraclen), np.asarray(b.fraclen))
        return Sym("", fl, "add8", pending=(a, b))
    b = _shortcut(self, b)
    if a.form == "conv" and a.pending[2] is None and b.form in ("q8", "conv"):
        joined = _join(*a.pending[:2], b)
        if joined is not None:
            return replace(a, pending=a.pending[:2] + (joined,))
    return _real_sum(graph, _as_real(graph, a), _as_real(graph, b))


def _maxpool(self: IntMaxPool2d, graph: Graph, x: Sym) -> Sym:
    out = graph.op("MaxPool", [x.name], "maxpool", kernel_shape=[self.kernel] * 2,
                   strides=[self.stride] * 2, pads=[self.padding] * 4)
    return dataclasses.replace(x, name=out)


def _digit_matmul(graph: Graph, pooled: str, weight: np.ndarray, largest: int) -> str | None:
    """``pooled`` (N, C) int32, |values| <= ``largest``, times the integer ``weight`` (C, K),
    exact, in one float32 MatMul: the values are cut into base-2**b digits (truncating
    division, digits keep the sign) with b small enough that every partial sum of a
    digit's product stays within 2**24; the digits' products are combined in float64.
    None where even 1-bit digits would not fit."""
    row_sum = float(np.abs(weight).sum(axis=0).max())
    bits = int(np.floor(np.log2(2.0**24 / max(row_sum, 1.0) + 1)))
    if bits < 1:
        return None
    count = -(-max(int(largest).bit_length(), 1) // bits)
    digits = []
    for j in range(count):
        rest = pooled if j == 0 else graph.op("Div", [pooled, graph.const(1 << (bits * j), np.int32)], "rest")
        last = j == count - 1
        digits.append(rest if last else
                      graph.op("Mod", [rest, graph.const(1 << bits, np.int32)], "digit", fmod=1))
    stacked = digits[0] if count == 1 else graph.op("Concat", digits, "digits", axis=0)
    stacked = graph.op("Cast", [stacked], "digits", to=TensorProto.FLOAT)
    product = graph.op("MatMul", [stacked, graph.const(weight, np.float32, "fc_w")], "fc")
    product = graph.op("Cast", [product], "fc", to=TensorProto.DOUBLE)
    if count == 1:
        return product
    product = graph.op("Reshape", [product, graph.const([count, -1, weight.shape[1]], np.int64)], "fc")
    radix = np.exp2(bits * np.arange(count, dtype=np.float64)).reshape(-1, 1, 1)
    weighted = graph.op("Mul", [product, graph.const(radix, np.float64)], "fc")
    return graph.op("ReduceSum", [weighted, graph.const([0], np.int64)], "fc", keepdims=0)


def _linear(self: IntLinear, graph: Graph, x: Sym, carrier: int = TensorProto.DOUBLE) -> Sym:
    """int32 sum over H·W, then the product and bias, exact: for onnx-int8 in float32
    MatMuls on digits of the sums (_digit_matmul) or else in float64; for
    onnx-integer-float in float32. The logits are aligned to one FL."""
    shift = self.output_fraclen - self.input_fraclen - self.weight_fraclen.numpy()
    weight = self.weight.numpy().T * np.exp2(shift)  # left shifts folded: exact integers
    bias = self.bias.numpy() * np.exp2(shift)
    wide = x.name  # onnx-integer-float: integers carried in float32
    if x.form == "q8":
        wide = graph.op("Cast", [x.name], "wide", to=TensorProto.INT32)
        if x.signed:
            wide = graph.op("Sub", [wide, graph.const(_zero_point(True), np.int32)], "wide")
    pooled = graph.op("ReduceSum", [wide, graph.const([2, 3], np.int64)], "pooled", keepdims=0)
    dtype = np.float64 if carrier == TensorProto.DOUBLE else np.float32
    acc = None
    if carrier == TensorProto.DOUBLE:
        acc = _digit_matmul(graph, pooled, weight, (127 if x.signed else 255) * self.pool_size)
    if acc is None:
        pooled = graph.op("Cast", [pooled], "pooledf", to=carrier)
        acc = graph.op("MatMul", [pooled, graph.const(weight, dtype, "fc_w")], "fc")
    acc = graph.op("Add", [acc, graph.const(bias, dtype, "fc_b")], "fc")
    return Sym(acc, self.output_fraclen, "float")


# ---------------------------------------------------------------- onnx-integer-float emitters

def _float_input(self: IntInput, graph: Graph, x: Sym) -> Sym:
    qmin, qmax = int_range(self.wl, self.signed)
    scaled = graph.op("Mul", [x.name, graph.const(2.0 ** self.fraclen, np.float32)], "scaled")
    q = graph.op("Clip", [graph.op("Round", [scaled]), graph.const(qmin, np.float32),
                          graph.const(qmax, np.float32)], "input_q")
    return Sym(q, self.fraclen, "float", self.signed)


def _float_conv(self: IntConv2d, graph: Graph, x: Sym) -> Sym:
    inputs = [x.name, graph.const(self.weight.numpy(), np.float32, "w"),
              graph.const(self.bias.numpy(), np.float32, "b")]
    out = graph.op("Conv", inputs, "conv", **_conv_attributes(self))
    return Sym(out, self.input_fraclen + self.weight_fraclen.numpy(), "float")


def _float_requantize(self: IntRequantize, graph: Graph, x: Sym) -> Sym:
    qmin, qmax = int_range(self.wl, self.signed)
    if self.cap is not None:
        qmax = min(qmax, self.cap)
    shift = np.asarray(x.fraclen) - self.fraclen
    factor = graph.const(_channel_shape(np.exp2(-shift.astype(np.float64)).astype(np.float32)), np.float32)
    rounded = graph.op("Round", [graph.op("Mul", [x.name, factor], "scaled")])
    q = graph.op("Clip", [rounded, graph.const(qmin, np.float32), graph.const(qmax, np.float32)], "q")
    return Sym(q, self.fraclen, "float", self.signed)


def _float_add(self: IntAdd, graph: Graph, a: Sym, b: Sym) -> Sym:
    a, b = _eight_bit_terms(self, a, b) if self.branch is not None else (a, _shortcut(self, b))
    fl = np.maximum(np.asarray(a.fraclen), np.asarray(b.fraclen))
    terms = []
    for term in (a, b):
        factor = graph.const(_channel_shape(np.exp2(fl - np.asarray(term.fraclen)).astype(np.float32)),
                             np.float32)
        terms.append(graph.op("Mul", [term.name, factor], "aligned"))
    return Sym(graph.op("Add", terms, "sum"), fl, "float")


# ---------------------------------------------------------------- onnx-float emitters

def _torch_conv(self: nn.Conv2d, graph: Graph, x: Sym) -> Sym:
    k = self.kernel_size[0]
    inputs = [x.name, graph.const(self.weight.detach().numpy(), np.float32, "w")]
    out = graph.op("Conv", inputs, "conv", kernel_shape=[k, k], strides=list(self.stride),
                   pads=[self.padding[0]] * 4, group=self.groups)
    return Sym(out)


def _torch_bn(self: nn.BatchNorm2d, graph: Graph, x: Sym) -> Sym:
    params = [self.weight, self.bias, self.running_mean, self.running_var]
    inputs = [x.name] + [graph.const(p.detach().numpy(), np.float32, "bn") for p in params]
    return Sym(graph.op("BatchNormalization", inputs, "bn", epsilon=self.eps))


def _torch_relu(self: nn.Module, graph: Graph, x: Sym) -> Sym:
    if isinstance(self, nn.ReLU6):
        return Sym(graph.op("Clip", [x.name, graph.const(0, np.float32), graph.const(6, np.float32)]))
    return Sym(graph.op("Relu", [x.name]))


def _torch_maxpool(self: nn.MaxPool2d, graph: Graph, x: Sym) -> Sym:
    return Sym(graph.op("MaxPool", [x.name], kernel_shape=[self.kernel_size] * 2,
                        strides=[self.stride] * 2, pads=[self.padding] * 4))


def _torch_add(self: Add, graph: Graph, a: Sym, b: Sym) -> Sym:
    return Sym(graph.op("Add", [a.name, b.name]))


def _torch_pool(self: nn.Module, graph: Graph, x: Sym) -> Sym:
    return Sym(graph.op("Flatten", [graph.op("GlobalAveragePool", [x.name])]))


def _torch_linear(self: nn.Linear, graph: Graph, x: Sym) -> Sym:
    inputs = [x.name, graph.const(self.weight.detach().numpy(), np.float32, "fc_w"),
              graph.const(self.bias.detach().numpy(), np.float32, "fc_b")]
    return Sym(graph.op("Gemm", inputs, "fc", transB=1))


def _identity(self: nn.Module, graph: Graph, x: Sym) -> Sym:
    return x


EMITTERS = {
    "onnx-int8": {IntInput: _int8_input, IntConv2d: _int8_conv, IntRequantize: _int8_requantize,
                  IntAdd: _int8_add, IntMaxPool2d: _maxpool, IntLinear: _linear},
    "onnx-integer-float": {IntInput: _float_input, IntConv2d: _float_conv,
                           IntRequantize: _float_requantize, IntAdd: _float_add,
                           IntMaxPool2d: _maxpool,
                           IntLinear: lambda self, g, x: _linear(self, g, x, TensorProto.FLOAT)},
    "onnx-float": {nn.Conv2d: _torch_conv, nn.BatchNorm2d: _torch_bn, nn.ReLU: _torch_relu,
                   nn.ReLU6: _torch_relu, nn.MaxPool2d: _torch_maxpool, Add: _torch_add,
                   nn.Linear: _torch_linear, nn.Dropout: _identity},
}


def _trace(body: nn.Module, format: str, graph: Graph) -> Sym:
    """Run ``body``'s forward on symbols, each known layer adding its nodes."""
    emitters = EMITTERS[format]
    for module in body.modules():
        for kind, emit in emitters.items():
            if type(module) is kind:
                module.forward = types.MethodType(lambda self, *xs, _e=emit: _e(self, graph, *xs), module)
        if format == "onnx-float" and isinstance(module, nn.Sequential) and \
                any(isinstance(m, nn.AdaptiveAvgPool2d) for m in module):
            module.forward = types.MethodType(lambda self, x: _torch_pool(self, graph, x), module)
    return body(Sym("input"))


def _float_model(model: nn.Module) -> nn.Module:
    float_model = build_model(**model.arch)
    state = {k: v for k, v in model.state_dict().items() if k in float_model.state_dict()}
    load_float_state_dict(float_model, state)
    return float_model.eval()


def export_onnx(model: nn.Module, path: str | Path, format: str = "onnx-int8",
                example_input: torch.Tensor | None = None, metadata: dict | None = None) -> Path:
    """Write ``model`` as an ONNX file that onnxruntime runs.

    Args:
        model: a calibrated fixed-point model in eval mode (for ``onnx-float``, a float
            model or a fixed-point one, whose float network is exported).
        path: the file to write.
        format: "onnx-int8", "onnx-integer-float" or "onnx-float".
        example_input: an input of the size the file will see (it fixes the classifier's
            pooling size); default: the stem's usual size.
        metadata: extra ``metadata_props`` entries (strings).

    Returns:
        The path. The graph's input is ``input`` (N, C, H, W) float32 with a dynamic batch
        axis, in the model's input convention; its output ``logits`` (N, classes): for the
        integer formats, integers with the true logits = logits / 2**output_fraclen
        (recorded in metadata_props, with the input convention and the layer formats).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    quant = getattr(model, "quant", None)
    props = {"format": format, "arch": json.dumps(model.arch),
             "input_convention": "imagenet-normalized" if quant is not None and quant.signed_input
             else "pixels/256 (round(255 x) / 256)"}
    graph = Graph()
    if format == "onnx-float":
        body = copy.deepcopy(model if quant is None else _float_model(model)).eval()
        out = _trace(body, format, graph)
        props["output_fraclen"] = "0"
        out_type = TensorProto.FLOAT
    else:
        if quant is None:
            raise ValueError(f"{format} needs a fixed-point model; a float model exports as onnx-float")
        if format == "onnx-int8" and quant.bits > 8:
            raise ValueError(f"onnx-int8 carries 8-bit tensors; a {quant.bits}-bit model exports "
                             "as onnx-integer-float")
        integer = integerize(model, example_input)
        out = _trace(integer.body, format, graph)
        props["output_fraclen"] = str(integer.output_fraclen)
        props["layers"] = layer_table(model).to_json(orient="records")
        out_type = TensorProto.DOUBLE if format == "onnx-int8" else TensorProto.FLOAT
    graph.nodes.append(helper.make_node("Identity", [out.name], ["logits"]))
    channels, classes = model.arch["in_channels"], model.arch["num_classes"]
    size = 224 if model.arch["stem"] == "imagenet" else 28
    if example_input is not None:
        size = example_input.shape[-1]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", channels, size, size])]
    outputs = [helper.make_tensor_value_info("logits", out_type, ["batch", classes])]
    onnx_graph = helper.make_graph(graph.nodes, f"f8lab_{model.arch['name']}", inputs, outputs,
                                   graph.initializers)
    opsets = [helper.make_opsetid("", OPSET)]
    if any(node.domain == "com.microsoft" for node in graph.nodes):
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    onnx_model = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="f8lab")
    onnx_model.ir_version = 8
    helper.set_model_props(onnx_model, {**props, **(metadata or {})})
    onnx_model.graph.doc_string = (f"f8lab {format} export of {model.arch['name']}: input 'input' "
                                   f"(N, C, H, W) float32, output 'logits'; see metadata_props")
    onnx.checker.check_model(onnx_model, full_check=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model, path)
    return path
