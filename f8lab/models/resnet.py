"""ResNet-18 and ResNet-50 (v1.5: the stride sits on the 3x3 conv), float or fixed point.

He et al., "Deep Residual Learning for Image Recognition"; torchvision's parameter names.
Fixed point (docs/method.md §5): every ReLU becomes the unsigned quantizer of the tensor it
produces, and an identity block's output quantizer shares its input's clipping level. A
block builds each BatchNorm and quantizer before the conv that folds or writes it and
registers it after the conv, in torchvision's order.
"""

from __future__ import annotations

import torch
from torch import nn

from f8lab.models.common import init_weights
from f8lab.models.network import Arch, Network
from f8lab.nn import Add, FixAdd, LayerKit


def _shortcut(
    kit: LayerKit, reads: nn.Module, inplanes: int, outplanes: int, stride: int, add: Add | FixAdd
) -> nn.Sequential:
    """The projection shortcut: a strided 1x1 conv + BN, written in the add's units."""
    norm = kit.norm(outplanes)
    conv = kit.conv(inplanes, outplanes, 1, stride, norm=norm, reads=reads, writes=add.shortcut_target)
    return nn.Sequential(conv, norm)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, kit: LayerKit, reads: nn.Module, inplanes: int, planes: int, stride: int, project: bool
    ) -> None:
        super().__init__()
        bn1, act1 = kit.norm(planes), kit.act()
        self.conv1 = kit.conv(inplanes, planes, 3, stride, norm=bn1, reads=reads, writes=act1)
        self.bn1, self.act1 = bn1, act1
        act_out = kit.act(tied_to=None if project else reads)
        add = kit.add(out=act_out, identity=None if project else reads)
        bn2 = kit.norm(planes)
        self.conv2 = kit.conv(planes, planes, 3, norm=bn2, reads=act1, writes=add.branch_target)
        self.bn2 = bn2
        self.downsample = _shortcut(kit, reads, inplanes, planes, stride, add) if project else None
        self.add, self.act_out = add, act_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act_out(self.add(out, shortcut))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self, kit: LayerKit, reads: nn.Module, inplanes: int, planes: int, stride: int, project: bool
    ) -> None:
        super().__init__()
        bn1, act1 = kit.norm(planes), kit.act()
        self.conv1 = kit.conv(inplanes, planes, 1, norm=bn1, reads=reads, writes=act1)
        self.bn1, self.act1 = bn1, act1
        bn2, act2 = kit.norm(planes), kit.act()
        self.conv2 = kit.conv(planes, planes, 3, stride, norm=bn2, reads=act1, writes=act2)
        self.bn2, self.act2 = bn2, act2
        act_out = kit.act(tied_to=None if project else reads)
        add = kit.add(out=act_out, identity=None if project else reads)
        bn3 = kit.norm(planes * 4)
        self.conv3 = kit.conv(planes, planes * 4, 1, norm=bn3, reads=act2, writes=add.branch_target)
        self.bn3 = bn3
        self.downsample = _shortcut(kit, reads, inplanes, planes * 4, stride, add) if project else None
        self.add, self.act_out = add, act_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act_out(self.add(out, shortcut))


class ResNet(Network):
    """ResNet with an ImageNet stem (7x7/2 conv + max pool) or a small-input stem (3x3/1)."""

    def __init__(
        self, block: type[BasicBlock | Bottleneck], layers: list[int], kit: LayerKit, arch: Arch
    ) -> None:
        super().__init__(kit, arch)
        planes = [max(1, int(64 * arch.width * 2**i)) for i in range(4)]
        self.image = kit.image_input()
        imagenet = arch.stem == "imagenet"
        bn1, act1 = kit.norm(planes[0]), kit.act()
        self.conv1 = kit.conv(
            arch.in_channels,
            planes[0],
            7 if imagenet else 3,
            2 if imagenet else 1,
            norm=bn1,
            reads=self.image,
            writes=act1,
        )
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if imagenet else nn.Identity()
        self.bn1, self.act1 = bn1, act1
        inplanes, reads = planes[0], act1
        stages = []
        for i, (width_i, blocks) in enumerate(zip(planes, layers)):
            stride = 1 if i == 0 else 2
            stage = []
            for j in range(blocks):
                project = j == 0 and (stride != 1 or inplanes != width_i * block.expansion)
                stage.append(block(kit, reads, inplanes, width_i, stride if j == 0 else 1, project))
                inplanes, reads = width_i * block.expansion, stage[-1].act_out
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = kit.global_pool()
        self.fc = kit.linear(inplanes, arch.num_classes, reads=reads)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(self.image(x))))
        x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x))


def resnet18(kit: LayerKit, arch: Arch) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], kit, arch)


def resnet50(kit: LayerKit, arch: Arch) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], kit, arch)
