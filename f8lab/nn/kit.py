"""Layer kits: the layer types an architecture is built from, float or fixed point.

An architecture is written once against a kit, as torchvision passes ``norm_layer``: the
float kit gives torch layers, the fixed-point kit gives f8lab's, with the same parameter
names, so a float checkpoint loads into either.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from f8lab.nn.act_quant import ActQuant
from f8lab.nn.conv import FixConv2d, FoldedBatchNorm2d
from f8lab.nn.linear import FixLinear
from f8lab.nn.residual import Add, FixAdd
from f8lab.quant import QuantConfig


@dataclass(frozen=True)
class LayerKit:
    """Factories for every layer type; ``quant=None`` is the float kit."""

    quant: QuantConfig | None = None

    @property
    def fixed_point(self) -> bool:
        return self.quant is not None

    @property
    def config(self) -> QuantConfig:
        """The fixed-point kit's QuantConfig."""
        if self.quant is None:
            raise ValueError("the float kit has no QuantConfig")
        return self.quant

    def conv(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
             groups: int = 1) -> nn.Module:
        padding = (kernel_size - 1) // 2
        if self.fixed_point:
            return FixConv2d(in_channels, out_channels, kernel_size, stride, padding, groups,
                             config=self.config)
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                         groups=groups, bias=False)

    def norm(self, channels: int) -> nn.Module:
        return FoldedBatchNorm2d(channels) if self.fixed_point else nn.BatchNorm2d(channels)

    def act(self, max_value: float | None = None) -> nn.Module:
        """ReLU (or ReLU6 with ``max_value=6``); fixed point: an unsigned ActQuant."""
        if self.fixed_point:
            return ActQuant(self.config, signed=False, max_value=max_value)
        return nn.ReLU6(inplace=True) if max_value == 6 else nn.ReLU(inplace=True)

    def signed_act(self) -> nn.Module:
        """No activation (a linear bottleneck's output); fixed point: a signed ActQuant."""
        return ActQuant(self.config, signed=True) if self.fixed_point else nn.Identity()

    def image_input(self) -> nn.Module:
        """The image's format: pixels/256 at unsigned FL 8, or signed FL 5 when normalised."""
        if not self.fixed_point:
            return nn.Identity()
        signed = self.config.signed_input
        fraclen = min(5, self.config.bits - 1) if signed else self.config.bits
        return ActQuant(self.config, signed=signed, fixed_fraclen=fraclen)

    def add(self, projection: bool = False) -> nn.Module:
        """The residual add; ``projection``: the shortcut is a conv (+BN), not the input."""
        return FixAdd(self.config, projection) if self.fixed_point else Add()

    def global_pool(self) -> nn.Module:
        """Global average pool + flatten; fixed point: folded into the classifier."""
        if self.fixed_point:
            return nn.Identity()
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))

    def dropout(self, p: float) -> nn.Module:
        return nn.Identity() if self.fixed_point else nn.Dropout(p)

    def linear(self, in_features: int, out_features: int) -> nn.Module:
        if self.fixed_point:
            return FixLinear(in_features, out_features, config=self.config,
                             rescale_forward=self.config.rescale_classifier)
        return nn.Linear(in_features, out_features)
