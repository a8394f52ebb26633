"""Pieces shared by the architectures: conv-BN-activation, channel rounding, initialisation."""

from __future__ import annotations

from typing import TypeVar

from torch import nn

from f8lab.nn import ActQuant, FixConv2d, LayerKit

Layer = TypeVar("Layer", bound=nn.Module)


def fixed(module: nn.Module, kind: type[Layer]) -> Layer:
    """``module`` as the fixed-point layer a fixed-point kit built; wiring runs only on
    fixed-point models, so anything else is a programming error."""
    if not isinstance(module, kind):
        raise TypeError(f"expected a {kind.__name__}, got {type(module).__name__}: only a "
                        "fixed-point model is wired")
    return module


def conv_bn_act(kit: LayerKit, in_channels: int, out_channels: int, kernel_size: int,
                stride: int = 1, groups: int = 1, max_value: float | None = None) -> nn.Sequential:
    """``Sequential(conv, bn, act)``, indexed like torchvision's Conv2dNormActivation."""
    return nn.Sequential(
        kit.conv(in_channels, out_channels, kernel_size, stride, groups),
        kit.norm(out_channels),
        kit.act(max_value),
    )


def wire_conv_bn_act(block: nn.Module, input_quant: ActQuant) -> ActQuant:
    """Wire a fixed-point ``conv_bn_act``; returns the quantizer of its output."""
    conv, bn, act = fixed(block, nn.Sequential)
    output_quant = fixed(act, ActQuant)
    fixed(conv, FixConv2d).attach(bn, input_quant, output_quant)
    return output_quant


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def init_weights(model: nn.Module, linear_std: float | None = None) -> None:
    """torchvision's initialisation: Kaiming (fan out) convs, unit BatchNorm; optionally
    N(0, linear_std) linear weights with zero bias."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and linear_std is not None:
            nn.init.normal_(module.weight, 0, linear_std)
            nn.init.zeros_(module.bias)
