"""ResNet-18 and ResNet-50 (v1.5: the stride sits on the 3x3 conv), float or fixed point.

He et al., "Deep Residual Learning for Image Recognition"; torchvision's parameter names.
Fixed point (docs/method.md §5): every ReLU becomes the unsigned quantizer of the tensor it
produces, and an identity block's output quantizer shares its input's clipping level.
"""

from __future__ import annotations

import torch
from torch import nn

from f8lab.models.common import init_weights
from f8lab.nn import ActQuant, LayerKit


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, kit: LayerKit, inplanes: int, planes: int, stride: int,
                 downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = kit.conv(inplanes, planes, 3, stride)
        self.bn1 = kit.norm(planes)
        self.act1 = kit.act()
        self.conv2 = kit.conv(planes, planes, 3)
        self.bn2 = kit.norm(planes)
        self.downsample = downsample
        self.add = kit.add(projection=downsample is not None)
        self.act_out = kit.act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act_out(self.add(out, shortcut))

    def body(self) -> list[tuple[nn.Module, nn.Module, ActQuant]]:
        return [(self.conv1, self.bn1, self.act1), (self.conv2, self.bn2, self.act_out)]


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, kit: LayerKit, inplanes: int, planes: int, stride: int,
                 downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = kit.conv(inplanes, planes, 1)
        self.bn1 = kit.norm(planes)
        self.act1 = kit.act()
        self.conv2 = kit.conv(planes, planes, 3, stride)
        self.bn2 = kit.norm(planes)
        self.act2 = kit.act()
        self.conv3 = kit.conv(planes, planes * 4, 1)
        self.bn3 = kit.norm(planes * 4)
        self.downsample = downsample
        self.add = kit.add(projection=downsample is not None)
        self.act_out = kit.act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act_out(self.add(out, shortcut))

    def body(self) -> list[tuple[nn.Module, nn.Module, ActQuant]]:
        return [(self.conv1, self.bn1, self.act1), (self.conv2, self.bn2, self.act2),
                (self.conv3, self.bn3, self.act_out)]


def wire_block(block: BasicBlock | Bottleneck, input_quant: ActQuant, share: bool) -> ActQuant:
    """Wire a fixed-point residual block; returns the quantizer of its output."""
    quant = input_quant
    for conv, bn, act in block.body():
        conv.attach(bn, quant, block.add.branch_output(act) if act is block.act_out else act)
        quant = act
    if block.downsample is not None:
        block.downsample[0].attach(block.downsample[1], input_quant,
                                   block.add.shortcut_output(block.act_out))
        block.add.attach(None, block.act_out)
    else:
        if share:
            block.act_out.share_alpha_with(input_quant)
        block.add.attach(input_quant, block.act_out)
    return block.act_out


class ResNet(nn.Module):
    """ResNet with an ImageNet stem (7x7/2 conv + max pool) or a small-input stem (3x3/1)."""

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], kit: LayerKit,
                 num_classes: int = 1000, stem: str = "imagenet", in_channels: int = 3,
                 width: float = 1.0) -> None:
        super().__init__()
        planes = [max(1, int(64 * width * 2**i)) for i in range(4)]
        self.image = kit.image_input()
        if stem == "imagenet":
            self.conv1 = kit.conv(in_channels, planes[0], 7, stride=2)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = kit.conv(in_channels, planes[0], 3)
            self.maxpool = nn.Identity()
        self.bn1 = kit.norm(planes[0])
        self.act1 = kit.act()
        inplanes = planes[0]
        stages = []
        for i, (width_i, blocks) in enumerate(zip(planes, layers)):
            stride = 1 if i == 0 else 2
            stage = []
            for j in range(blocks):
                downsample = None
                if j == 0 and (stride != 1 or inplanes != width_i * block.expansion):
                    downsample = nn.Sequential(
                        kit.conv(inplanes, width_i * block.expansion, 1, stride),
                        kit.norm(width_i * block.expansion),
                    )
                stage.append(block(kit, inplanes, width_i, stride if j == 0 else 1, downsample))
                inplanes = width_i * block.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = kit.global_pool()
        self.fc = kit.linear(inplanes, num_classes)
        init_weights(self)
        if kit.fixed_point:
            self._wire(kit.quant.share_clipping)

    def _wire(self, share: bool) -> None:
        self.conv1.attach(self.bn1, self.image, self.act1)
        quant = self.act1
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                quant = wire_block(block, quant, share)
        self.fc.attach(quant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(self.image(x))))
        x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x))


def resnet18(kit: LayerKit, **kwargs) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], kit, **kwargs)


def resnet50(kit: LayerKit, **kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], kit, **kwargs)
