"""MobileNet V1, float or fixed point: a 3x3 stem and 13 depthwise-separable blocks.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications". Every activation is a ReLU, so every layer reads an unsigned tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from f8lab.models.common import conv_bn_act, fixed, init_weights, wire_conv_bn_act
from f8lab.nn import ActQuant, FixLinear, LayerKit

# c (output channels of the pointwise conv), s (stride of the depthwise conv)
SEPARABLE_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


class MobileNetV1(nn.Module):
    """MobileNet V1; the small-input stem keeps stride 1 in the stem and the first
    128-channel block (total stride 8 instead of 32)."""

    def __init__(self, kit: LayerKit, num_classes: int = 1000, stem: str = "imagenet",
                 in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        small = stem != "imagenet"
        channels = max(8, int(32 * width))
        self.image = kit.image_input()
        features: list[nn.Module] = [conv_bn_act(kit, in_channels, channels, 3, 1 if small else 2)]
        for i, (c, s) in enumerate(SEPARABLE_BLOCKS):
            stride = 1 if small and i == 1 else s
            out = max(8, int(c * width))
            features.append(nn.Sequential(
                conv_bn_act(kit, channels, channels, 3, stride, groups=channels),
                conv_bn_act(kit, channels, out, 1),
            ))
            channels = out
        self.features = nn.Sequential(*features)
        self.pool = kit.global_pool()
        self.fc = kit.linear(channels, num_classes)
        init_weights(self, linear_std=0.01)
        if kit.fixed_point:
            self._wire()

    def _wire(self) -> None:
        quant = wire_conv_bn_act(self.features[0], fixed(self.image, ActQuant))
        for block in self.features[1:]:
            for stage in fixed(block, nn.Sequential):
                quant = wire_conv_bn_act(stage, quant)
        fixed(self.fc, FixLinear).attach(quant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(self.image(x))))


def mobilenet_v1(kit: LayerKit, **kwargs) -> MobileNetV1:
    return MobileNetV1(kit, **kwargs)
