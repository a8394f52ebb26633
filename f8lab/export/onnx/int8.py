"""The ``onnx-int8`` target: the integer model for onnxruntime's 8-bit kernels.

Every 8-bit tensor travels as uint8 (a signed one with zero point 128): QuantizeLinear for
the image, QLinearConv (int8 weights, int32 bias, power-of-two scales) for the
convolutions, max pooling on the uint8 values. The exact residual add (residual="int32")
needs a convolution's accumulator: where it pays, the shortcut joins that QLinearConv's
input as extra channels read by centre taps (the identity inverted, taps summing to
-2**k; a projection's input subsampled by its stride, its weights as taps), so the sum
forms in the int32 accumulator, while the added channels are at most
SHORTCUT_CHANNELS_LIMIT times the convolution's own; otherwise the convolutions are QDQ
(DequantizeLinear of the input, the int8 weights and the int32 bias) around a float Conv,
and the add runs in real units, exact while the accumulators stay below 2**24. The 8-bit
add (residual="int8") is one com.microsoft.QLinearAdd of two 8-bit tensors. The
classifier multiplies base-256 digits of its sums by the weights in MatMulInteger.

Weights (WEIGHT_FORMS): onnxruntime's uint8 x int8 kernels on x86-64 without VNNI add
pairs of products in int16 with saturation (vpmaddubsw), its uint8 x uint8 kernels
widen first and are exact on every CPU. The default, "portable", gives a kernel int8
weights only where no pair of products can pass int16 (pairs_fit_int16), uint8 weights
with zero point 128 elsewhere: exact everywhere. "s8" gives every kernel int8 weights:
faster, exact where the uint8 x int8 kernels accumulate in 32 bits (VNNI, ARM). "u8"
gives every kernel uint8 weights.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from onnx import GraphProto, NodeProto, TensorProto

from f8lab.export.integer_ops import (
    INT32_MAX,
    IntAccumulatorAdd,
    IntAdd,
    IntConv2d,
    IntInput,
    IntLinear,
    IntMaxPool2d,
    IntPooledRequantize,
    IntReLU,
    IntRequantize,
)
from f8lab.export.onnx.graph import Emitter, Form, Graph, Join, PendingAdd, PendingConv, Sym, step_of
from f8lab.export.onnx.integer_steps import (
    conv_attributes,
    eight_bit_terms,
    linear,
    maxpool,
    pooled,
    shortcut_term,
    zero_point,
)
from f8lab.quant import int_range

# A residual conv takes its shortcut in as extra input channels (see join) while these
# are at most this many times its own input channels. Measured at 224x224, 2 threads,
# against the float Conv path for the same adds: ResNet-50, whose bottleneck's last 1x1
# conv reads a quarter of the identity's channels (ratio 4), 18.1 vs 20.2 ms at batch 1,
# 131 vs 165 ms at batch 8; ResNet-18 at batch 1 with FLs that make its 3x3 joins take
# four copies (ratio 4, 5 of its 8 adds) 11.8 vs 11.2 ms, two copies 9.7 vs 13.3 ms, one
# copy 7.4 vs 13.1 ms.
SHORTCUT_CHANNELS_LIMIT = 4

WEIGHT_FORMS = ("portable", "s8", "u8")
INT16_MAX = 2**15 - 1
WEIGHT_INPUT = {"QLinearConv": 3, "MatMulInteger": 1}  # where a kernel reads its weights


def kernel_weights(graph: GraphProto) -> list[tuple[NodeProto, TensorProto]]:
    """Every 8-bit kernel of a file (QLinearConv, MatMulInteger) whose weights are a
    constant, with that constant."""
    constants = {tensor.name: tensor for tensor in graph.initializer}
    return [
        (node, constants[node.input[WEIGHT_INPUT[node.op_type]]])
        for node in graph.node
        if node.op_type in WEIGHT_INPUT and node.input[WEIGHT_INPUT[node.op_type]] in constants
    ]


def pairs_fit_int16(weight: np.ndarray) -> bool:
    """True where no two products of uint8 inputs (0..255) and one output's int8 weights
    (``weight``: outputs first) can sum past int16: 255 times each output's two largest
    |w| is at most 32767. Then a kernel that adds adjacent products in int16 with
    saturation (x86-64 without VNNI) is exact whichever two it pairs."""
    flat = np.abs(weight.reshape(weight.shape[0], -1).astype(np.int64))
    largest_two = -np.partition(-flat, 1, axis=1)[:, :2].sum(axis=1) if flat.shape[1] > 1 else flat[:, 0]
    return 255 * int(largest_two.max()) <= INT16_MAX


def _weight_inputs(
    graph: Graph, weight: np.ndarray, zero_shape: tuple, weights: str, hint: str, transposed: bool = False
) -> tuple[str, str]:
    """A kernel's integer weights (outputs first, int8 values; stored transposed for
    MatMulInteger) and their zero point, as int8 or as uint8 with zero point 128, as
    ``weights`` asks (see WEIGHT_FORMS)."""
    stored = weight.T if transposed else weight
    if weights == "s8" or (weights == "portable" and pairs_fit_int16(weight)):
        return (
            graph.const(stored.astype(np.int8), np.int8, hint),
            graph.const(np.zeros(zero_shape, np.int8), np.int8),
        )
    return (
        graph.const((stored + 128).astype(np.uint8), np.uint8, hint),
        graph.const(np.full(zero_shape, 128, np.uint8), np.uint8),
    )


def _q8_params(graph: Graph, fraclen, signed: bool) -> list[str]:
    return [
        graph.const(2.0**-fraclen, np.float32, "scale"),
        graph.const(zero_point(signed), np.uint8, "zero"),
    ]


def _clip_q8(graph: Graph, x: Sym, wl: int, cap: int | None) -> Sym:
    """Saturate to the format's range, which uint8 is wider than: ±(2**(wl-1) - 1) signed
    (the uint8 form reaches -128), 0..2**wl - 1 unsigned, and apply a cap."""
    qmin, qmax = int_range(wl, x.signed)
    if cap is not None:
        qmax = min(qmax, cap)
    if not x.signed and qmax >= 255:
        return x
    zero = zero_point(x.signed)
    low, high = graph.const(zero + qmin, np.uint8), graph.const(zero + qmax, np.uint8)
    return Sym(graph.op("Clip", [x.name, low, high], "clip"), x.fraclen, Form.Q8, x.signed)


def _input(self: IntInput, graph: Graph, x: Sym) -> Sym:
    q = graph.op("QuantizeLinear", [x.name, *_q8_params(graph, self.fraclen, self.signed)], "input_q")
    return _clip_q8(graph, Sym(q, self.fraclen, Form.Q8, self.signed), self.wl, None)


def _conv(self: IntConv2d, graph: Graph, x: Sym) -> Sym:
    if x.form is not Form.Q8:
        raise ValueError("a convolution must read an 8-bit tensor")
    fraclen = self.input_fraclen + self.weight_fraclen.numpy()
    return Sym("", fraclen, Form.CONV, pending=PendingConv(self, x))


def split_taps(matrix: np.ndarray, copies: int) -> np.ndarray:
    """``copies`` integer arrays that sum to ``matrix``, each entry at most
    ceil(|entry| / copies) in magnitude."""
    quotient = np.trunc(matrix / copies).astype(np.int64)
    remainder = matrix - quotient * copies
    return np.stack([quotient + np.sign(remainder) * (j < np.abs(remainder)) for j in range(copies)])


def join(conv: IntConv2d, x: Sym, addend: Sym, weights: str) -> Join | None:
    """How ``addend`` (an identity shortcut, or a projection convolution not emitted yet)
    joins ``conv``'s int32 accumulator inside its QLinearConv, or None where it cannot or
    would not pay.

    Aligned to the accumulator's FL, the addend is ``M @ a``: M = 2**k I for an identity
    (k = FL_acc - FL_shortcut), the projection's weight times 2**d for a projection (d =
    FL_acc - FL_projection). It comes in as extra input channels read by centre taps: the
    identity inverted (255 - u, so that taps of -128 serve k = 7), the projection's input
    subsampled by its stride; M is split over copies of those channels so that every tap
    fits int8 (with ``weights="portable"``, where the convolution's own weights pass
    pairs_fit_int16, every tap fits ±64, so that the joined kernel passes it too), where
    the copies' channels stay within SHORTCUT_CHANNELS_LIMIT times the convolution's own
    input channels.
    """
    size = conv.weight.shape[-1]
    if conv.groups != 1 or conv.stride != 1 or conv.padding != size // 2:
        return None
    channels = conv.weight.shape[0]
    shift = np.broadcast_to(x.fraclen + conv.weight_fraclen.numpy() - addend.fraclen, (channels,))
    if np.any(shift < 0):
        return None
    scale = np.exp2(shift).astype(np.int64)
    provable = weights == "portable" and pairs_fit_int16(conv.weight.numpy())
    if addend.form is Form.Q8:
        matrix, limit = -np.diag(scale), 64 if provable else 128
        bias = scale * (255 - zero_point(addend.signed) - zero_point(x.signed))
    else:
        projection = addend.conv
        kernel = projection.conv
        if (
            projection.join is not None
            or kernel.groups != 1
            or kernel.weight.shape[-1] != 1
            or kernel.padding != 0
            or projection.source.signed != x.signed
        ):
            return None
        matrix = kernel.weight.numpy()[:, :, 0, 0].astype(np.int64) * scale[:, None]
        bias, limit = kernel.bias.numpy().astype(np.int64) * scale, 64 if provable else 127
    copies = max(1, -(-int(np.abs(matrix).max()) // limit))
    if copies * matrix.shape[1] > SHORTCUT_CHANNELS_LIMIT * conv.weight.shape[1]:
        return None
    if np.abs(conv.bias.numpy().astype(np.int64) + bias).max() > INT32_MAX:
        return None
    return Join(addend, split_taps(matrix, copies), bias)


def _qlinear_conv(graph: Graph, pending: PendingConv, out_fraclen: int, signed: bool, weights: str) -> str:
    """QLinearConv; with a joined shortcut, the exact residual sum inside it (see join)."""
    conv, x = pending.conv, pending.source
    fl_w = conv.weight_fraclen.numpy()
    weight, bias = conv.weight.numpy().astype(np.int64), conv.bias.numpy().astype(np.int64)
    name = x.name
    if pending.join is not None:
        addend, taps = pending.join.addend, pending.join.taps
        copies, channels, width = taps.shape
        centre = weight.shape[-1] // 2
        extra = np.zeros((channels, copies * width) + weight.shape[2:], np.int64)
        extra[:, :, centre, centre] = np.concatenate(list(taps), axis=1)
        weight, bias = np.concatenate([weight, extra], axis=1), bias + pending.join.bias
        if addend.form is Form.Q8:
            feed = graph.op("Sub", [graph.const(255, np.uint8), addend.name], "inverted")
        else:
            source, stride = addend.conv.source, addend.conv.conv.stride
            feed = (
                source.name
                if stride == 1
                else graph.op(
                    "Slice",
                    [
                        source.name,
                        graph.const([0, 0], np.int64),
                        graph.const([2**62] * 2, np.int64),
                        graph.const([2, 3], np.int64),
                        graph.const([stride] * 2, np.int64),
                    ],
                    "strided",
                )
            )
        name = graph.op("Concat", [x.name] + [feed] * copies, "with_addend", axis=1)
    w, w_zero = _weight_inputs(graph, weight, fl_w.shape, weights, "w")
    inputs = [
        name,
        *_q8_params(graph, x.fraclen, x.signed),
        w,
        graph.const(step_of(fl_w), np.float32),
        w_zero,
        *_q8_params(graph, out_fraclen, signed),
        graph.const(bias.astype(np.int32), np.int32, "b"),
    ]
    return graph.op("QLinearConv", inputs, "qconv", **conv_attributes(conv))


def _dequantize(graph: Graph, x: Sym) -> Sym:
    """An 8-bit tensor's real values in float32 (exact: 8-bit integers times 2**-FL)."""
    real = graph.op("DequantizeLinear", [x.name, *_q8_params(graph, x.fraclen, x.signed)], "real")
    return Sym(real, x.fraclen, Form.REAL)


def _qdq_conv(graph: Graph, conv: IntConv2d, x: Sym) -> Sym:
    """DequantizeLinear, Conv, in real units: the accumulator times 2**-FL_acc, exact in
    float32 while it stays below 2**24 (int8 weights, int32 bias)."""
    fl_w = conv.weight_fraclen.numpy()
    fl_acc = x.fraclen + fl_w
    axis = {"axis": 0} if np.ndim(fl_w) else {}
    weight = graph.op(
        "DequantizeLinear",
        [
            graph.const(conv.weight.numpy().astype(np.int8), np.int8, "w"),
            graph.const(step_of(fl_w), np.float32),
            graph.const(np.zeros(fl_w.shape, np.int8), np.int8),
        ],
        "w_real",
        **axis,
    )
    bias = graph.op(
        "DequantizeLinear",
        [
            graph.const(conv.bias.numpy().astype(np.int32), np.int32, "b"),
            graph.const(step_of(fl_acc) * np.ones(conv.bias.shape, np.float32), np.float32),
            graph.const(np.zeros(conv.bias.shape, np.int32), np.int32),
        ],
        "b_real",
        axis=0,
    )
    out = graph.op("Conv", [_dequantize(graph, x).name, weight, bias], "conv", **conv_attributes(conv))
    return Sym(out, fl_acc, Form.REAL)


def _real_sum(graph: Graph, a: Sym, b: Sym) -> Sym:
    fl = np.maximum(np.asarray(a.fraclen), np.asarray(b.fraclen))
    return Sym(graph.op("Add", [a.name, b.name], "sum"), fl, Form.REAL)


def _as_real(graph: Graph, x: Sym) -> Sym:
    if x.form is Form.ADD8:
        return _real_sum(graph, _dequantize(graph, x.add.a), _dequantize(graph, x.add.b))
    if x.form is Form.CONV:
        acc = _qdq_conv(graph, x.conv.conv, x.conv.source)
        joined = x.conv.join
        return acc if joined is None else _real_sum(graph, acc, _as_real(graph, joined.addend))
    if x.form is Form.Q8:
        return _dequantize(graph, x)
    return x


def _wide(graph: Graph, x: Sym) -> Sym:
    """A tensor's integers in float64 (F8Net's int32 residual path): a convolution's exact
    accumulator from ConvInteger (uint8 weights with zero point 128: exact on every CPU),
    or an 8-bit tensor's integers."""
    if x.form is Form.WIDE:
        return x
    if x.form is Form.Q8:
        wide = graph.op("Cast", [x.name], "wide", to=TensorProto.DOUBLE)
        if x.signed:
            wide = graph.op("Sub", [wide, graph.const(zero_point(True), np.float64)], "wide")
        return Sym(wide, x.fraclen, Form.WIDE)
    if x.form is not Form.CONV or x.conv.join is not None:
        raise ValueError(f"an accumulator of form {x.form.value} has no exact int32 form here")
    conv, source = x.conv.conv, x.conv.source
    inputs = [
        source.name,
        graph.const((conv.weight.numpy() + 128).astype(np.uint8), np.uint8, "w"),
        graph.const(zero_point(source.signed), np.uint8),
        graph.const(128, np.uint8),
    ]
    acc = graph.op("ConvInteger", inputs, "acc", **conv_attributes(conv))
    acc = graph.op("Cast", [acc], "acc", to=TensorProto.DOUBLE)
    bias = graph.const(conv.bias.numpy().astype(np.float64).reshape(1, -1, 1, 1), np.float64, "b")
    return Sym(graph.op("Add", [acc, bias], "acc"), x.fraclen, Form.WIDE)


def _wide_to_q8(graph: Graph, x: Sym, fraclen: int, signed: bool, wl: int, cap: int | None) -> Sym:
    """Requantize wide integers: times 2**(FL - FL_x), rounded half to even, saturated."""
    factor = graph.const(np.exp2(fraclen - np.asarray(x.fraclen, np.float64)), np.float64)
    rounded = graph.op("Round", [graph.op("Mul", [x.name, factor], "scaled")])
    return _saturated_q8(graph, rounded, fraclen, signed, wl, cap)


def _saturated_q8(graph: Graph, integers: str, fraclen: int, signed: bool, wl: int, cap: int | None) -> Sym:
    """Integers in float64, saturated to the format (and ``cap``), as uint8."""
    qmin, qmax = int_range(wl, signed)
    if cap is not None:
        qmax = min(qmax, cap)
    zero = zero_point(signed)
    shifted = graph.op("Add", [integers, graph.const(zero, np.float64)], "shifted")
    low, high = graph.const(zero + qmin, np.float64), graph.const(zero + qmax, np.float64)
    q = graph.op("Cast", [graph.op("Clip", [shifted, low, high], "q")], "q", to=TensorProto.UINT8)
    return Sym(q, fraclen, Form.Q8, signed)


def _requantize(self: IntRequantize, graph: Graph, x: Sym, weights: str) -> Sym:
    if x.form is Form.WIDE:
        return _wide_to_q8(graph, x, self.fraclen, self.signed, self.wl, self.cap)
    if x.form is Form.CONV:
        out = _qlinear_conv(graph, x.conv, self.fraclen, self.signed, weights)
    elif x.form is Form.ADD8:  # onnxruntime's 8-bit add: round half to even of the exact sum
        a, b = x.add.a, x.add.b
        out = graph.op(
            "QLinearAdd",
            [
                a.name,
                *_q8_params(graph, a.fraclen, a.signed),
                b.name,
                *_q8_params(graph, b.fraclen, b.signed),
                *_q8_params(graph, self.fraclen, self.signed),
            ],
            "qadd",
            domain="com.microsoft",
        )
    else:
        params = _q8_params(graph, self.fraclen, self.signed)
        out = graph.op("QuantizeLinear", [_as_real(graph, x).name, *params], "q")
    return _clip_q8(graph, Sym(out, self.fraclen, Form.Q8, self.signed), self.wl, self.cap)


def _add(self: IntAdd, graph: Graph, a: Sym, b: Sym, weights: str) -> Sym:
    """The 8-bit add (residual="int8"): two 8-bit tensors, added by the QLinearAdd that the
    next requantization emits. The exact integer add (residual="int32"): inside the
    branch's QLinearConv where the shortcut (identity or projection) joins it cheaply,
    else in real units (both terms are multiples of 2**-FL_sum)."""
    if self.branch is not None:
        a, b = eight_bit_terms(self, a, b)
        fl = np.maximum(np.asarray(a.fraclen), np.asarray(b.fraclen))
        return Sym("", fl, Form.ADD8, pending=PendingAdd(a, b))
    b = shortcut_term(self, b)
    if a.form is Form.CONV and a.conv.join is None and b.form in (Form.Q8, Form.CONV):
        joined = join(a.conv.conv, a.conv.source, b, weights)
        if joined is not None:
            return dataclasses.replace(a, pending=dataclasses.replace(a.conv, join=joined))
    return _real_sum(graph, _as_real(graph, a), _as_real(graph, b))


def _accumulator_add(self: IntAccumulatorAdd, graph: Graph, a: Sym, b: Sym) -> Sym:
    """F8Net's add of two accumulators, in float64: aligned by powers of two, exact."""
    a, b = _wide(graph, a), _wide(graph, b)
    fl = np.maximum(np.asarray(a.fraclen), np.asarray(b.fraclen))
    terms = [
        graph.op(
            "Mul",
            [t.name, graph.const(np.exp2(fl - np.asarray(t.fraclen, np.float64)), np.float64)],
            "aligned",
        )
        for t in (a, b)
    ]
    total = graph.op("Add", terms, "sum")
    bound = [graph.const(-INT32_MAX, np.float64), graph.const(INT32_MAX, np.float64)]
    return Sym(graph.op("Clip", [total, *bound], "sum"), fl, Form.WIDE)


def _relu(self: IntReLU, graph: Graph, x: Sym) -> Sym:
    wide = _wide(graph, x)
    return Sym(graph.op("Relu", [wide.name], "relu"), wide.fraclen, Form.WIDE)


def _pooled_requantize(self: IntPooledRequantize, graph: Graph, x: Sym) -> Sym:
    """F8Net's pool and the classifier input's quantization, in float64."""
    scaled = pooled(self, graph, _wide(graph, x), TensorProto.DOUBLE)
    return _saturated_q8(graph, graph.op("Round", [scaled]), self.fraclen, False, self.wl, None)


def _linear(self: IntLinear, graph: Graph, x: Sym, weights: str) -> Sym:
    """The classifier on onnxruntime's 8-bit kernels, exact. In NHWC order (no transpose
    runs after onnxruntime's NHWC convolutions), one MatMulInteger of a row of ones and the
    uint8 values sums them over H·W in int32; the sums are cut into base-256 digits along
    a new axis, one MatMulInteger multiplies every digit by the weights (int32 sums), and
    in float64 each digit's products are scaled by its radix and the left shifts and
    summed, the zero point's share taken out with the bias. Where a product could leave
    int32, the float64 classifier of integer_steps."""
    weight = self.weight.numpy().astype(np.int64)  # (classes, C)
    largest = 255 * self.pool_size
    if (
        x.form is not Form.Q8
        or largest > INT32_MAX
        or np.abs(weight).max() > 127
        or 255 * np.abs(weight).sum(axis=1).max() > INT32_MAX
    ):
        return linear(self, graph, x, TensorProto.DOUBLE)
    nhwc = graph.op("Transpose", [x.name], "nhwc", perm=[0, 2, 3, 1])
    rows = graph.op("Reshape", [nhwc, graph.const([0, self.pool_size, weight.shape[1]], np.int64)], "rows")
    ones = graph.const(np.ones((1, self.pool_size), np.uint8), np.uint8, "ones")
    pooled = graph.op("MatMulInteger", [ones, rows], "pooled")  # (N, 1, C)
    count = -(-largest.bit_length() // 8)
    radix = 256 ** np.arange(count).reshape(-1, 1)  # digit j of every sum: (N, count, C)
    digits = graph.op(
        "Mod",
        [graph.op("Div", [pooled, graph.const(radix, np.int32)], "digit"), graph.const(256, np.int32)],
        "digit",
    )
    digits = graph.op("Cast", [digits], "digit", to=TensorProto.UINT8)
    fc_w, fc_zero = _weight_inputs(graph, weight, (), weights, "fc_w", transposed=True)  # (C, classes)
    product = graph.op("MatMulInteger", [digits, fc_w, graph.const(0, np.uint8), fc_zero], "fc")
    product = graph.op("Cast", [product], "fc", to=TensorProto.DOUBLE)
    shift = np.exp2(self.output_fraclen - self.input_fraclen - self.weight_fraclen.numpy())
    acc = graph.op("Mul", [product, graph.const(radix * shift * np.ones(weight.shape[0]), np.float64)], "fc")
    acc = graph.op("ReduceSum", [acc, graph.const([1], np.int64)], "fc", keepdims=0)
    bias = (self.bias.numpy() - zero_point(x.signed) * self.pool_size * weight.sum(axis=1)) * shift
    acc = graph.op("Add", [acc, graph.const(bias, np.float64, "fc_b")], "fc")
    return Sym(acc, self.output_fraclen, Form.FLOAT)


def emitters(weights: str = "portable") -> dict[type, Emitter]:
    """The onnx-int8 target, its kernels' weights as ``weights`` asks (see WEIGHT_FORMS)."""
    if weights not in WEIGHT_FORMS:
        raise ValueError(
            f"unknown weights {weights!r}; choose one of {', '.join(WEIGHT_FORMS)} "
            "(portable: exact on every CPU)"
        )
    return {
        IntInput: _input,
        IntConv2d: _conv,
        IntMaxPool2d: maxpool,
        IntAdd: functools.partial(_add, weights=weights),
        IntAccumulatorAdd: _accumulator_add,
        IntReLU: _relu,
        IntPooledRequantize: _pooled_requantize,
        IntRequantize: functools.partial(_requantize, weights=weights),
        IntLinear: functools.partial(_linear, weights=weights),
    }
