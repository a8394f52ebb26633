"""MobileNet V2, float or fixed point, with torchvision's parameter names.

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks". Fixed point
(docs/method.md §3, §5): ReLU6 becomes an unsigned quantizer whose learned clip replaces the
cap of 6 (kept as an explicit cap when clipping is off); block outputs are linear, so the
next block reads them with a signed quantizer; identity blocks share the clipping level.
"""

from __future__ import annotations

import torch
from torch import nn

from f8lab.models.common import ConvBNAct, init_weights, make_divisible
from f8lab.models.network import Arch, Network
from f8lab.nn import LayerKit

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
    """Expand (1x1), depthwise (3x3), project (1x1, linear); an identity block adds its input
    and ties its output to it (also where an unsigned input, a ReLU6, meets the signed output)."""

    def __init__(
        self, kit: LayerKit, reads: nn.Module, inp: int, oup: int, stride: int, expand_ratio: int
    ) -> None:
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        out_act = kit.signed_act(tied_to=reads if self.use_res_connect else None)
        add = kit.add(out=out_act, identity=reads) if self.use_res_connect else None
        expand = [ConvBNAct(kit, reads, inp, hidden, 1, max_value=6)] if expand_ratio != 1 else []
        depthwise = ConvBNAct(
            kit, expand[0].output if expand else reads, hidden, hidden, 3, stride, groups=hidden, max_value=6
        )
        norm = kit.norm(oup)
        project = kit.conv(
            hidden,
            oup,
            1,
            norm=norm,
            reads=depthwise.output,
            writes=out_act if add is None else add.branch_target,
        )
        self.conv = nn.Sequential(*expand, depthwise, project, norm)
        self.add = add
        self.out_act = out_act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.add is not None:
            out = self.add(out, x)
        return self.out_act(out)


class MobileNetV2(Network):
    """MobileNet V2; the small-input stem keeps stride 1 in the stem and the 24-channel
    stage (total stride 8 instead of 32), for 28x28 or 32x32 images."""

    def __init__(self, kit: LayerKit, arch: Arch) -> None:
        super().__init__(kit, arch)
        input_channel = make_divisible(32 * arch.width)
        self.last_channel = make_divisible(1280 * max(1.0, arch.width))
        small = arch.stem != "imagenet"
        self.image = kit.image_input()
        stem = ConvBNAct(kit, self.image, arch.in_channels, input_channel, 3, 1 if small else 2, max_value=6)
        features: list[nn.Module] = [stem]
        reads = stem.output
        for i, (t, c, n, s) in enumerate(INVERTED_RESIDUALS):
            stride = 1 if small and i == 1 else s
            output_channel = make_divisible(c * arch.width)
            for j in range(n):
                block = InvertedResidual(
                    kit, reads, input_channel, output_channel, stride if j == 0 else 1, t
                )
                features.append(block)
                input_channel, reads = output_channel, block.out_act
        last = ConvBNAct(kit, reads, input_channel, self.last_channel, 1, max_value=6)
        self.features = nn.Sequential(*features, last)
        self.pool = kit.global_pool()
        self.classifier = nn.Sequential(
            kit.dropout(0.2), kit.linear(self.last_channel, arch.num_classes, reads=last.output)
        )
        init_weights(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(self.image(x))))
