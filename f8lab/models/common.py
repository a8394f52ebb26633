"""Pieces shared by the architectures: conv-BN-activation, channel rounding, initialisation."""

from __future__ import annotations

from torch import nn

from f8lab.nn import LayerKit


class ConvBNAct(nn.Sequential):
    """``Sequential(conv, bn, act)``, indexed like torchvision's Conv2dNormActivation; the conv
    reads the tensor of ``reads`` and writes that of ``output``, its activation."""

    def __init__(
        self,
        kit: LayerKit,
        reads: nn.Module,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        max_value: float | None = None,
    ) -> None:
        bn, act = kit.norm(out_channels), kit.act(max_value)
        super().__init__(
            kit.conv(
                in_channels, out_channels, kernel_size, stride, groups, norm=bn, reads=reads, writes=act
            ),
            bn,
            act,
        )

    @property
    def output(self) -> nn.Module:
        """The quantizer (float kit: the activation) of the tensor this block writes."""
        return self[2]


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
