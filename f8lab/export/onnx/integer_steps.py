"""What both integer targets share: convolution attributes, the residual add's terms, max
pooling, F8Net's pool, and the exact classifier (the int32 sum over H·W and the integer
product) in float."""

from __future__ import annotations

import dataclasses

import numpy as np
from onnx import TensorProto

from f8lab.export.integer_ops import IntAdd, IntConv2d, IntLinear, IntMaxPool2d, IntPooledRequantize
from f8lab.export.onnx.graph import Form, Graph, Sym


def zero_point(signed: bool) -> int:
    """8-bit tensors travel as uint8: a signed one with zero point 128."""
    return 128 if signed else 0


def conv_attributes(conv: IntConv2d) -> dict:
    k = conv.weight.shape[-1]
    return dict(kernel_shape=[k, k], strides=[conv.stride] * 2, pads=[conv.padding] * 4, group=conv.groups)


def shortcut_term(add: IntAdd, b: Sym) -> Sym:
    """The shortcut at the FL its integers count at in the sum (see IntAdd)."""
    return b if add.shortcut_fraclen is None else dataclasses.replace(b, fraclen=add.shortcut_fraclen)


def eight_bit_terms(add: IntAdd, a: Sym, b: Sym) -> tuple[Sym, Sym]:
    """The 8-bit add's terms (residual="int8"), requantized by the add's own steps (their
    emitters add the nodes) and placed at the FLs they count at in the sum."""
    assert add.branch is not None and add.branch_fraclen is not None
    a = dataclasses.replace(add.branch(a), fraclen=add.branch_fraclen)
    if add.shortcut is not None:
        b = add.shortcut(b)
    return a, shortcut_term(add, b)


def maxpool(self: IntMaxPool2d, graph: Graph, x: Sym) -> Sym:
    out = graph.op(
        "MaxPool",
        [x.name],
        "maxpool",
        kernel_shape=[self.kernel] * 2,
        strides=[self.stride] * 2,
        pads=[self.padding] * 4,
    )
    return dataclasses.replace(x, name=out)


def linear(self: IntLinear, graph: Graph, x: Sym, carrier: int) -> Sym:
    """int32 sum over H·W, then the product and bias, exact: in float64 (``carrier``
    DOUBLE, onnx-int8's classifier where its 8-bit kernels cannot hold the sums), or in
    float32 (FLOAT, onnx-integer-float). The logits are aligned to one FL."""
    shift = self.output_fraclen - self.input_fraclen - self.weight_fraclen.numpy()
    weight = self.weight.numpy().T * np.exp2(shift)  # left shifts folded: exact integers
    bias = self.bias.numpy() * np.exp2(shift)
    wide = x.name  # onnx-integer-float: integers carried in float32
    if x.form is Form.Q8:
        wide = graph.op("Cast", [x.name], "wide", to=TensorProto.INT32)
        if x.signed:
            wide = graph.op("Sub", [wide, graph.const(zero_point(True), np.int32)], "wide")
    pooled = graph.op("ReduceSum", [wide, graph.const([2, 3], np.int64)], "pooled", keepdims=0)
    dtype = np.float64 if carrier == TensorProto.DOUBLE else np.float32
    pooled = graph.op("Cast", [pooled], "pooledf", to=carrier)
    acc = graph.op("MatMul", [pooled, graph.const(weight, dtype, "fc_w")], "fc")
    acc = graph.op("Add", [acc, graph.const(bias, dtype, "fc_b")], "fc")
    return Sym(acc, self.output_fraclen, Form.FLOAT)


def pooled(self: IntPooledRequantize, graph: Graph, x: Sym, carrier: int) -> str:
    """F8Net's pool before its classifier's quantizer, not yet rounded: the sum over H·W
    times 2**(FL - FL_x) (exact), divided by H·W (``mean``) or times 2**-6, in ``carrier``
    (DOUBLE: the division is correctly rounded, so rounding half to even then gives
    round_divide's integers)."""
    dtype = np.float64 if carrier == TensorProto.DOUBLE else np.float32
    total = graph.op("ReduceSum", [x.name, graph.const([2, 3], np.int64)], "pooled", keepdims=1)
    shift = self.fraclen - int(x.fraclen) - (self.shift_bits if self.pool == "sum_shift" else 0)
    scaled = graph.op("Mul", [total, graph.const(2.0**shift, dtype)], "pooled")
    if self.pool == "sum_shift":
        return scaled
    size = graph.op("ReduceProd", [graph.op("Shape", [x.name], "size", start=2)], "size", keepdims=0)
    return graph.op("Div", [scaled, graph.op("Cast", [size], "size", to=carrier)], "mean")
