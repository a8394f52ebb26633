"""ResNet-18 and ResNet-50 (v1.5: the stride sits on the 3x3 conv), float or fixed point.

He et al., "Deep Residual Learning for Image Recognition"; torchvision's parameter names.
Fixed point (docs/method.md §5): every ReLU becomes the unsigned quantizer of the tensor it
produces, and an identity block's output quantizer shares its input's clipping level.
"""

from __future__ import annotations

import torch
from torch import nn

from f8lab.models.common import fixed, init_weights
from f8lab.nn import ActQuant, FixAdd, FixConv2d, FixLinear, LayerKit


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, kit: LayerKit, inplanes: int, planes: int, stride: int,
                 downsample: nn.Sequential | None) -> None:
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

    def body(self) -> list[tuple[nn.Module, nn.Module, nn.Module]]:
        return [(self.conv1, self.bn1, self.act1), (self.conv2, self.bn2, self.act_out)]


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, kit: LayerKit, inplanes: int, planes: int, stride: int,
                 downsample: nn.Sequential | None) -> None:
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

    def body(self) -> list[tuple[nn.Module, nn.Module, nn.Module]]:
        return [(self.conv1, self.bn1, self.act1), (self.conv2, self.bn2, self.act2),
                (self.conv3, self.bn3, self.act_out)]


def wire_block(block: nn.Module, input_quant: ActQuant, share: bool) -> ActQuant:
    """Wire a fixed-point residual block; returns the quantizer of its output."""
    if not isinstance(block, (BasicBlock, Bottleneck)):
        raise TypeError(f"expected a residual block, got {type(block).__name__}")
    add, act_out = fixed(block.add, FixAdd), fixed(block.act_out, ActQuant)
    quant = input_quant
    for conv, bn, act in block.body():
        act_quant = fixed(act, ActQuant)
        fixed(conv, FixConv2d).attach(
            bn, quant, add.branch_output(act_quant) if act is block.act_out else act_quant)
        quant = act_quant
    if block.downsample is not None:
        projection, projection_bn = block.downsample
        fixed(projection, FixConv2d).attach(projection_bn, input_quant, add.shortcut_output(act_out))
        add.attach(None, act_out)
    else:
        if share:
            act_out.share_alpha_with(input_quant)
        add.attach(input_quant, act_out)
    return act_out


class ResNet(nn.Module):
    """ResNet with an ImageNet stem (7x7/2 conv + max pool) or a small-input stem (3x3/1)."""

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], kit: LayerKit,
                 num_classes: int = 1000, stem: str = "imagenet", in_channels: int = 3,
                 width: float = 1.0) -> None:
        super().__init__()
        planes = [max(1, int(64 * width * 2**i)) for i in range(4)]
        self.image = kit.image_input()
        self.maxpool: nn.Module
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
            self._wire(kit.config.share_clipping)

    def _wire(self, share: bool) -> None:
        quant = fixed(self.act1, ActQuant)
        fixed(self.conv1, FixConv2d).attach(self.bn1, fixed(self.image, ActQuant), quant)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                quant = wire_block(block, quant, share)
        fixed(self.fc, FixLinear).attach(quant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(self.image(x))))
        x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x))


def resnet18(kit: LayerKit, **kwargs) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], kit, **kwargs)


def resnet50(kit: LayerKit, **kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], kit, **kwargs)
