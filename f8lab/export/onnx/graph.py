"""The graph builder shared by every ONNX target: symbols for the tensors being built, the
node and constant lists, and the trace that runs a model's own forward on symbols.

Every layer, instead of computing, adds its ONNX nodes: the architecture's forward drives
the export, so every model f8lab builds exports. A target is a dispatch table from layer
type to emitter, ``emit(layer, graph, *inputs) -> Sym``.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from onnx import helper, numpy_helper
from torch import nn

if TYPE_CHECKING:
    from f8lab.export.integer_ops import IntConv2d


class Form(enum.Enum):
    """How a symbol's values are held."""

    FLOAT = "float"  # a float tensor (integers in a float type, or the float network's values)
    Q8 = "q8"  # 8-bit integers as uint8 (a signed tensor with zero point 128)
    REAL = "real"  # an accumulator's real value in float32
    WIDE = "wide"  # an accumulator's integers in float64, exact (F8Net's int32 residual path)
    CONV = "conv"  # a convolution not emitted yet (``pending``: a PendingConv)
    ADD8 = "add8"  # an 8-bit add not emitted yet (``pending``: a PendingAdd)


@dataclass(frozen=True)
class Join:
    """A shortcut that joins a convolution's accumulator as extra input channels: the
    addend, its centre taps (copies, C_out, C_addend) and what the bias gains (C_out,)."""

    addend: Sym
    taps: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class PendingConv:
    """A convolution waiting for its output format (or for a shortcut to join it)."""

    conv: IntConv2d
    source: Sym
    join: Join | None = None


@dataclass(frozen=True)
class PendingAdd:
    """Two 8-bit terms waiting for the requantization that adds them (QLinearAdd)."""

    a: Sym
    b: Sym


@dataclass(frozen=True)
class Sym:
    """A tensor of the graph being built: its name, FL, form and signedness."""

    name: str
    fraclen: int | np.ndarray = 0
    form: Form = Form.FLOAT
    signed: bool = False
    pending: PendingConv | PendingAdd | None = None

    @property
    def conv(self) -> PendingConv:
        assert isinstance(self.pending, PendingConv), self.form
        return self.pending

    @property
    def add(self) -> PendingAdd:
        assert isinstance(self.pending, PendingAdd), self.form
        return self.pending


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


Emitter = Callable[..., Sym]


def step_of(fraclen) -> np.ndarray:
    """The grid step of a fractional length, ``2**-fraclen``, in float32 (exact: a power of two)."""
    return np.exp2(-np.asarray(fraclen, dtype=np.float64)).astype(np.float32)


def channel_shape(values: np.ndarray) -> np.ndarray:
    return values.reshape(1, -1, 1, 1) if values.ndim else values


def trace(body: nn.Module, emitters: dict[type, Emitter], graph: Graph) -> Sym:
    """Run ``body``'s forward on symbols: each module whose type is in ``emitters`` adds
    its nodes instead of computing."""
    for module in body.modules():
        emit = emitters.get(type(module))
        if emit is not None:
            module.forward = types.MethodType(  # type: ignore[method-assign]
                lambda self, *xs, _e=emit: _e(self, graph, *xs), module
            )
    return body(Sym("input"))
