"""MobileNet V1, float or fixed point: a 3x3 stem and 13 depthwise-separable blocks.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications". Every activation is a ReLU, so every layer reads an unsigned tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from f8lab.models.common import ConvBNAct, init_weights
from f8lab.models.network import Arch, Network
from f8lab.nn import LayerKit

# c (output channels of the pointwise conv), s (stride of the depthwise conv)
SEPARABLE_BLOCKS = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
]


class MobileNetV1(Network):
    """MobileNet V1; the small-input stem keeps stride 1 in the stem and the first
    128-channel block (total stride 8 instead of 32)."""

    def __init__(self, kit: LayerKit, arch: Arch) -> None:
        super().__init__(kit, arch)
        small = arch.stem != "imagenet"
        channels = max(8, int(32 * arch.width))
        self.image = kit.image_input()
        stem = ConvBNAct(kit, self.image, arch.in_channels, channels, 3, 1 if small else 2)
        features: list[nn.Module] = [stem]
        reads = stem.output
        for i, (c, s) in enumerate(SEPARABLE_BLOCKS):
            stride = 1 if small and i == 1 else s
            out = max(8, int(c * arch.width))
            depthwise = ConvBNAct(kit, reads, channels, channels, 3, stride, groups=channels)
            pointwise = ConvBNAct(kit, depthwise.output, channels, out, 1)
            features.append(nn.Sequential(depthwise, pointwise))
            channels, reads = out, pointwise.output
        self.features = nn.Sequential(*features)
        self.pool = kit.global_pool()
        self.fc = kit.linear(channels, arch.num_classes, reads=reads)
        init_weights(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(self.image(x))))
