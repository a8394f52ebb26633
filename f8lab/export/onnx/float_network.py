"""The ``onnx-float`` target: the float network (BatchNorm, ReLU, average pool), for
comparison; a fixed-point model exports the float network it was built from."""

from __future__ import annotations

import numpy as np
from torch import nn

from f8lab.export.onnx.graph import Emitter, Graph, Sym
from f8lab.nn import Add


def _conv(self: nn.Conv2d, graph: Graph, x: Sym) -> Sym:
    k = self.kernel_size[0]
    inputs = [x.name, graph.const(self.weight.detach().numpy(), np.float32, "w")]
    out = graph.op(
        "Conv",
        inputs,
        "conv",
        kernel_shape=[k, k],
        strides=list(self.stride),
        pads=[self.padding[0]] * 4,
        group=self.groups,
    )
    return Sym(out)


def _batch_norm(self: nn.BatchNorm2d, graph: Graph, x: Sym) -> Sym:
    params = [p for p in (self.weight, self.bias, self.running_mean, self.running_var) if p is not None]
    if len(params) != 4:
        raise ValueError(
            "a BatchNorm without affine parameters or running statistics has no onnx-float form here"
        )
    inputs = [x.name] + [graph.const(p.detach().numpy(), np.float32, "bn") for p in params]
    return Sym(graph.op("BatchNormalization", inputs, "bn", epsilon=self.eps))


def _relu(self: nn.Module, graph: Graph, x: Sym) -> Sym:
    if isinstance(self, nn.ReLU6):
        return Sym(graph.op("Clip", [x.name, graph.const(0, np.float32), graph.const(6, np.float32)]))
    return Sym(graph.op("Relu", [x.name]))


def _maxpool(self: nn.MaxPool2d, graph: Graph, x: Sym) -> Sym:
    return Sym(
        graph.op(
            "MaxPool",
            [x.name],
            kernel_shape=[self.kernel_size] * 2,
            strides=[self.stride] * 2,
            pads=[self.padding] * 4,
        )
    )


def _add(self: Add, graph: Graph, a: Sym, b: Sym) -> Sym:
    return Sym(graph.op("Add", [a.name, b.name]))


def _sequential(self: nn.Sequential, graph: Graph, x: Sym) -> Sym:
    """A model's pooling head (average pool, flatten) as GlobalAveragePool; any other
    Sequential runs its layers (their emitters) in order."""
    if any(isinstance(m, nn.AdaptiveAvgPool2d) for m in self):
        return Sym(graph.op("Flatten", [graph.op("GlobalAveragePool", [x.name])]))
    for layer in self:
        x = layer(x)
    return x


def _linear(self: nn.Linear, graph: Graph, x: Sym) -> Sym:
    inputs = [
        x.name,
        graph.const(self.weight.detach().numpy(), np.float32, "fc_w"),
        graph.const(self.bias.detach().numpy(), np.float32, "fc_b"),
    ]
    return Sym(graph.op("Gemm", inputs, "fc", transB=1))


def _identity(self: nn.Module, graph: Graph, x: Sym) -> Sym:
    return x


EMITTERS: dict[type, Emitter] = {
    nn.Conv2d: _conv,
    nn.BatchNorm2d: _batch_norm,
    nn.ReLU: _relu,
    nn.ReLU6: _relu,
    nn.MaxPool2d: _maxpool,
    Add: _add,
    nn.Sequential: _sequential,
    nn.Linear: _linear,
    nn.Dropout: _identity,
}
