"""The ``onnx-integer-float`` target: the integer model's integers carried in float32
(Conv, Mul by 2**-n, Round, Clip), as the original F8Net code offered."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from f8lab.export.integer_ops import (
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
from f8lab.export.onnx.graph import Emitter, Form, Graph, Sym, channel_shape
from f8lab.export.onnx.integer_steps import (
    conv_attributes,
    eight_bit_terms,
    linear,
    maxpool,
    pooled,
    shortcut_term,
)
from f8lab.quant import int_range


def _input(self: IntInput, graph: Graph, x: Sym) -> Sym:
    qmin, qmax = int_range(self.wl, self.signed)
    scaled = graph.op("Mul", [x.name, graph.const(2.0**self.fraclen, np.float32)], "scaled")
    q = graph.op(
        "Clip",
        [graph.op("Round", [scaled]), graph.const(qmin, np.float32), graph.const(qmax, np.float32)],
        "input_q",
    )
    return Sym(q, self.fraclen, Form.FLOAT, self.signed)


def _conv(self: IntConv2d, graph: Graph, x: Sym) -> Sym:
    inputs = [
        x.name,
        graph.const(self.weight.numpy(), np.float32, "w"),
        graph.const(self.bias.numpy(), np.float32, "b"),
    ]
    out = graph.op("Conv", inputs, "conv", **conv_attributes(self))
    return Sym(out, self.input_fraclen + self.weight_fraclen.numpy(), Form.FLOAT)


def _requantize(self: IntRequantize, graph: Graph, x: Sym) -> Sym:
    qmin, qmax = int_range(self.wl, self.signed)
    if self.cap is not None:
        qmax = min(qmax, self.cap)
    shift = np.asarray(x.fraclen) - self.fraclen
    factor = graph.const(channel_shape(np.exp2(-shift.astype(np.float64)).astype(np.float32)), np.float32)
    rounded = graph.op("Round", [graph.op("Mul", [x.name, factor], "scaled")])
    q = graph.op("Clip", [rounded, graph.const(qmin, np.float32), graph.const(qmax, np.float32)], "q")
    return Sym(q, self.fraclen, Form.FLOAT, self.signed)


def _add(self: IntAdd, graph: Graph, a: Sym, b: Sym) -> Sym:
    a, b = eight_bit_terms(self, a, b) if self.branch is not None else (a, shortcut_term(self, b))
    fl = np.maximum(np.asarray(a.fraclen), np.asarray(b.fraclen))
    terms = []
    for term in (a, b):
        factor = graph.const(
            channel_shape(np.exp2(fl - np.asarray(term.fraclen)).astype(np.float32)), np.float32
        )
        terms.append(graph.op("Mul", [term.name, factor], "aligned"))
    return Sym(graph.op("Add", terms, "sum"), fl, Form.FLOAT)


def _relu(self: IntReLU, graph: Graph, x: Sym) -> Sym:
    return Sym(graph.op("Relu", [x.name], "relu"), x.fraclen, Form.FLOAT)


def _pooled_requantize(self: IntPooledRequantize, graph: Graph, x: Sym) -> Sym:
    """F8Net's pool and the classifier input's quantization, in float32."""
    qmin, qmax = int_range(self.wl, signed=False)
    low, high = graph.const(qmin, np.float32), graph.const(qmax, np.float32)
    rounded = graph.op("Round", [pooled(self, graph, x, TensorProto.FLOAT)])
    return Sym(graph.op("Clip", [rounded, low, high], "q"), self.fraclen, Form.FLOAT)


def _linear(self: IntLinear, graph: Graph, x: Sym) -> Sym:
    return linear(self, graph, x, TensorProto.FLOAT)


EMITTERS: dict[type, Emitter] = {
    IntInput: _input,
    IntConv2d: _conv,
    IntRequantize: _requantize,
    IntAdd: _add,
    IntAccumulatorAdd: _add,  # both terms at their own FLs: aligned as any add's
    IntReLU: _relu,
    IntPooledRequantize: _pooled_requantize,
    IntMaxPool2d: maxpool,
    IntLinear: _linear,
}
