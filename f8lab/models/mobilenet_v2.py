"""MobileNet V2, float or fixed point, with torchvision's parameter names.

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks". Fixed point
(docs/method.md §3, §5): ReLU6 becomes an unsigned quantizer whose learned clip replaces the
cap of 6 (kept as an explicit cap when clipping is off); block outputs are linear, so the
next block reads them with a signed quantizer; identity blocks share the clipping level.
"""

from __future__ import annotations

import torch
from torch import nn

from f8lab.models.common import conv_bn_act, fixed, init_weights, make_divisible, wire_conv_bn_act
from f8lab.nn import ActQuant, FixAdd, FixConv2d, FixLinear, LayerKit

# t (expansion), c (channels), n (blocks), s (stride of the first block)
INVERTED_RESIDUALS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class InvertedResidual(nn.Module):
    def __init__(self, kit: LayerKit, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_act(kit, inp, hidden, 1, max_value=6))
        layers += [
            conv_bn_act(kit, hidden, hidden, 3, stride, groups=hidden, max_value=6),
            kit.conv(hidden, oup, 1),
            kit.norm(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.add: nn.Module | None = kit.add() if self.use_res_connect else None
        self.out_act = kit.signed_act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.add is not None:
            out = self.add(out, x)
        return self.out_act(out)

    def wire(self, input_quant: ActQuant, share: bool) -> ActQuant:
        """Wire the fixed-point block; returns the quantizer of its output."""
        quant = input_quant
        for stage in self.conv[:-2]:
            quant = wire_conv_bn_act(stage, quant)
        out_act, last = fixed(self.out_act, ActQuant), fixed(self.conv[-2], FixConv2d)
        if self.add is None:
            last.attach(self.conv[-1], quant, out_act)
            return out_act
        add = fixed(self.add, FixAdd)
        last.attach(self.conv[-1], quant, add.branch_output(out_act))
        if share:  # also where an unsigned input (ReLU6) meets the signed output
            out_act.share_alpha_with(input_quant)
        add.attach(input_quant, out_act)
        return out_act


class MobileNetV2(nn.Module):
    """MobileNet V2; the small-input stem keeps stride 1 in the stem and the 24-channel
    stage (total stride 8 instead of 32), for 28x28 or 32x32 images."""

    def __init__(self, kit: LayerKit, num_classes: int = 1000, stem: str = "imagenet",
                 in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        input_channel = make_divisible(32 * width)
        self.last_channel = make_divisible(1280 * max(1.0, width))
        small = stem != "imagenet"
        self.image = kit.image_input()
        features: list[nn.Module] = [
            conv_bn_act(kit, in_channels, input_channel, 3, 1 if small else 2, max_value=6)
        ]
        for i, (t, c, n, s) in enumerate(INVERTED_RESIDUALS):
            stride = 1 if small and i == 1 else s
            output_channel = make_divisible(c * width)
            for j in range(n):
                features.append(InvertedResidual(kit, input_channel, output_channel,
                                                 stride if j == 0 else 1, t))
                input_channel = output_channel
        features.append(conv_bn_act(kit, input_channel, self.last_channel, 1, max_value=6))
        self.features = nn.Sequential(*features)
        self.pool = kit.global_pool()
        self.classifier = nn.Sequential(kit.dropout(0.2), kit.linear(self.last_channel, num_classes))
        init_weights(self, linear_std=0.01)
        if kit.fixed_point:
            self._wire(kit.config.share_clipping)

    def _wire(self, share: bool) -> None:
        quant = wire_conv_bn_act(self.features[0], fixed(self.image, ActQuant))
        for block in self.features[1:-1]:
            quant = fixed(block, InvertedResidual).wire(quant, share)
        quant = wire_conv_bn_act(self.features[-1], quant)
        fixed(self.classifier[1], FixLinear).attach(quant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(self.image(x))))


def mobilenet_v2(kit: LayerKit, **kwargs) -> MobileNetV2:
    return MobileNetV2(kit, **kwargs)
