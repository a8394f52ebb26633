"""Fixed-point layers: conv+BN with PACT scaling, linear, activation quantizer, residual add."""

from f8lab.nn.act_quant import ActQuant
from f8lab.nn.conv import FixConv2d, FoldedBatchNorm2d
from f8lab.nn.finite import check_finite_formats
from f8lab.nn.kit import LayerKit
from f8lab.nn.linear import FixLinear
from f8lab.nn.residual import Add, FixAdd
from f8lab.nn.weight_quant import WeightQuant

__all__ = [
    "ActQuant",
    "Add",
    "FixAdd",
    "FixConv2d",
    "FixLinear",
    "FoldedBatchNorm2d",
    "LayerKit",
    "WeightQuant",
    "check_finite_formats",
]
