"""F8Net's own network layout, built from f8lab's layers, to run F8Net's model-zoo files.

F8Net's code quantizes each tensor where a layer reads it, keeps the residual path
unquantized and adds the branch to the block input without rescaling it; its classifier
pools, then quantizes (docs/method.md, "F8Net's published models"). This module builds
that network (ResNet-18/50, MobileNet V1/V2), with F8Net's module names (``head.0``,
``stage_I_layer_J.body.K``, ``shortcut.0``, ``tail.0``, ``classifier.0``), so that a zoo
file loads with renamed leaves only (``f8lab.models.f8net_zoo``); in evaluation it computes
what F8Net's evaluation computes.

- ``ReaderConv`` is F8Net's ``ReLUClipFXQConvBN``: the quantizer of its own input (with a
  private FL, and the clipping level of the chain's first layer), then conv + folded BN,
  written in the units of the layer that reads the result.
- A residual block adds its branch (in the next block's units) to its input (in its own)
  as they are, then (ResNet) applies a ReLU; the integer model adds the two int32 sums,
  aligned by shifts.
- ``F8NetClassifier`` is ``ReLUClipFXQLinear`` as F8Net evaluates it: the pooled features
  (mean, or the sum times 2**-6 where F8Net trained with its shift pool) quantized with the
  classifier's own clipping level, the raw weight quantized, and the bias divided by the
  input's scale and the "rescale forward" factor. Its logits are F8Net's evaluation logits:
  the training logits divided by that positive factor, with the same ranking.
- F8Net's float files (``_32``) are this network in F8Net's floating mode: nothing is
  rounded, each quantizer but the stem's clips at its [8, 6] range (at α, in real units),
  and each weight (folded, or the classifier's raw one) is clamped to the range of its
  [8, 7] format (``ClampedWeight``), as F8Net trained and evaluated them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from f8lab.models.mobilenet_v1 import SEPARABLE_BLOCKS
from f8lab.models.mobilenet_v2 import INVERTED_RESIDUALS
from f8lab.nn import ActQuant, Add, FixConv2d, FoldedBatchNorm2d, WeightQuant
from f8lab.quant import QuantConfig
from f8lab.settings import check_settings, setting

ARCHS = ("resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2")
POOLS = ("mean", "sum_shift")
SHIFT_POOL_BITS = 6  # F8Net's FXQAvgPool2d(7): the sum times 2**-round(log2(49))


@dataclass(frozen=True)
class F8NetRecipe:
    """How an F8Net network was trained, where its state dict does not say it."""

    arch: str = setting("resnet18", choices=ARCHS)  # ResNet-50 is v1.5 (stride on the 3x3)
    clipping: bool = True  # PACT clipping levels (conventional); False: pure fixed point
    fraclen_method: str = setting("std", choices=("std", "grid"))  # weights' FL: formula or search
    normalized_input: bool = False  # the stem quantizes the normalised image (signed, own FL)
    pool: str = setting("mean", choices=POOLS)  # the classifier's pool
    # F8Net's float model: no rounding, each tensor clamped to the range of its fixed format
    # ([8, 7] weights, [8, 6] inputs: activations clip at their level α); no FLs are tracked,
    # so fraclen_method is unused
    floating: bool = False

    def __post_init__(self) -> None:
        check_settings(self)

    @property
    def kind(self) -> str:
        """What the row's file holds: "float" or "8-bit"."""
        return "float" if self.floating else "8-bit"

    def quant(self) -> QuantConfig:
        return QuantConfig(
            fraclen_method="fixed" if self.floating else self.fraclen_method,
            floating=self.floating,
            clipping=self.clipping,
            signed_input=self.normalized_input,
        )


# The model-zoo rows (F8Net's file names, lower case) and the settings of their training
# configs (F8Net's apps/imagenet/): the conventional rows with clipping and the std formula
# on pixels, their float models (``_32``) the same network in F8Net's floating mode; the
# tiny fine-tuning rows pure fixed point with grid-searched FLs on normalised images,
# ResNet-50's with the shift pool.
ZOO = {
    "res18_32": F8NetRecipe("resnet18", floating=True),
    "mbv1_32": F8NetRecipe("mobilenet_v1", floating=True),
    "mbv2b_32": F8NetRecipe("mobilenet_v2", floating=True),
    "res18_8": F8NetRecipe("resnet18"),
    "mbv1_8": F8NetRecipe("mobilenet_v1"),
    "mbv2b_8": F8NetRecipe("mobilenet_v2"),
    "res18_8p": F8NetRecipe("resnet18", clipping=False, fraclen_method="grid", normalized_input=True),
    "res50b_8p": F8NetRecipe(
        "resnet50", clipping=False, fraclen_method="grid", normalized_input=True, pool="sum_shift"
    ),
    "res50b_8n": F8NetRecipe(
        "resnet50", clipping=False, fraclen_method="grid", normalized_input=True, pool="sum_shift"
    ),
}


class ClampedWeight(WeightQuant):
    """The weight quantizer of F8Net's float model: the folded weight is not rounded but
    clamped to its format's range, ±(2**(wl-1) - 1) · 2**-FL (±127/128 at [8, 7])."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        top = (2 ** (self.wl - 1) - 1) * torch.exp2(-self.fraclen.to(weight.dtype))
        if self.dim is not None:  # (C,) -> (C, 1, ...): one FL per output channel
            top = top.view(-1, *[1] * (weight.dim() - 1))
        return torch.clamp(weight, -top, top)


def weight_quantizer(config: QuantConfig, out_channels: int) -> WeightQuant:
    """F8Net's weight quantizer for ``config``: rounding, or clamping only in floating mode."""
    return ClampedWeight(config, out_channels) if config.floating else WeightQuant(config, out_channels)


class ReaderConv(nn.Module):
    """F8Net's ReLUClipFXQConvBN: ``conv(quant(x))`` with the BatchNorm folded, written in the
    units of ``writes`` (the quantizer of the layer that reads the output)."""

    def __init__(
        self,
        config: QuantConfig,
        quant: ActQuant,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        writes: ActQuant,
        groups: int = 1,
    ) -> None:
        super().__init__()
        bn = FoldedBatchNorm2d(out_channels)
        padding = (kernel_size - 1) // 2
        self.conv = FixConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            groups,
            config=config,
            bn=bn,
            input_quant=quant,
            output_quant=writes,
            weight_quant=weight_quantizer(config, out_channels),
        )
        self.bn, self.quant = bn, quant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.quant(x))


class _Block(nn.Module):
    """A residual block: ``relu(body(x) + shortcut(x))``, the sum unquantized and unrescaled;
    the body reads the tensor of ``reads``, a projection shortcut that of ``shortcut_quant``
    (None: an identity shortcut), and both write in the units of ``writes``."""

    def __init__(
        self,
        config: QuantConfig,
        reads: ActQuant,
        writes: ActQuant,
        shortcut_quant: ActQuant | None,
        inp: int,
        outp: int,
        stride: int,
    ) -> None:
        super().__init__()
        self.body = self._body(config, reads, writes, inp, outp, stride)
        self.shortcut = None
        if shortcut_quant is not None:
            projection = ReaderConv(config, shortcut_quant, inp, outp, 1, stride, writes=writes)
            self.shortcut = nn.Sequential(projection)
        self.add, self.post_relu = Add(), nn.ReLU()

    def _body(
        self, config: QuantConfig, reads: ActQuant, writes: ActQuant, inp: int, outp: int, stride: int
    ) -> nn.Sequential:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return self.post_relu(self.add(self.body(x), shortcut))


class BasicBlock(_Block):
    expansion = 1

    def _body(
        self, config: QuantConfig, reads: ActQuant, writes: ActQuant, inp: int, outp: int, stride: int
    ) -> nn.Sequential:
        mid = ActQuant(config)
        return nn.Sequential(
            ReaderConv(config, reads, inp, outp, 3, stride, writes=mid),
            ReaderConv(config, mid, outp, outp, 3, 1, writes=writes),
        )


class Bottleneck(_Block):
    expansion = 4

    def _body(
        self, config: QuantConfig, reads: ActQuant, writes: ActQuant, inp: int, outp: int, stride: int
    ) -> nn.Sequential:
        midp = outp // 4
        mid1, mid2 = ActQuant(config), ActQuant(config)
        return nn.Sequential(
            ReaderConv(config, reads, inp, midp, 1, 1, writes=mid1),
            ReaderConv(config, mid1, midp, midp, 3, stride, writes=mid2),
            ReaderConv(config, mid2, midp, outp, 1, 1, writes=writes),
        )


class F8NetClassifier(nn.Linear):
    """F8Net's ReLUClipFXQLinear after its pool, as F8Net evaluates it (module docstring)."""

    def __init__(self, config: QuantConfig, quant: ActQuant, in_features: int, out_features: int, pool: str):
        super().__init__(in_features, out_features)
        self.weight_quant = weight_quantizer(config, out_features)
        self.quant, self.pool = quant, pool

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C): the mean, or the sum times 2**-6."""
        if self.pool == "mean":
            return x.mean(dim=(2, 3))
        return x.sum(dim=(2, 3)) * 2.0**-SHIFT_POOL_BITS

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The quantized weight and the bias ``b / (s · r)``: ``s`` the input's scale, ``r``
        the "rescale forward" factor ``1 / (sqrt(N_out) · std(Q(W)))``."""
        weight = self.weight_quant(self.weight)
        rescale = 1.0 / (math.sqrt(self.out_features) * weight.detach().std())
        return weight, self.bias / (self.quant.pass_scale() * rescale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("F8Net's layout is for evaluating its files: it does not train in f8lab")
        q = self.quant(self.pooled(x))
        weight, bias = self.folded()
        return F.linear(q, weight, self.weight_quant.quantize_bias(bias, self.quant.batch_fraclen))


class DepthwiseSeparable(nn.Module):
    """MobileNet V1's block: depthwise 3x3, pointwise 1x1, ReLU."""

    def __init__(
        self, config: QuantConfig, reads: ActQuant, writes: ActQuant, inp: int, outp: int, stride: int
    ):
        super().__init__()
        mid = ActQuant(config)
        self.body = nn.Sequential(
            ReaderConv(config, reads, inp, inp, 3, stride, writes=mid, groups=inp),
            ReaderConv(config, mid, inp, outp, 1, 1, writes=writes),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class InvertedResidual(nn.Module):
    """MobileNet V2's block: expand 1x1 (unless ``t`` is 1), depthwise 3x3, project 1x1, and
    ``body(x) + x`` (unquantized, unrescaled, no ReLU) where the shapes allow."""

    def __init__(
        self, config: QuantConfig, reads: ActQuant, writes: ActQuant, inp: int, outp: int, stride: int, t: int
    ) -> None:
        super().__init__()
        expanded = inp * t
        mid = ActQuant(config)
        layers = []
        if t != 1:
            layers.append(ReaderConv(config, reads, inp, expanded, 1, 1, writes=mid))
            reads, mid = mid, ActQuant(config)
        layers.append(ReaderConv(config, reads, expanded, expanded, 3, stride, writes=mid, groups=expanded))
        layers.append(ReaderConv(config, mid, expanded, outp, 1, 1, writes=writes))
        self.body = nn.Sequential(*layers)
        self.residual_connection = stride == 1 and inp == outp
        self.add = Add() if self.residual_connection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) if self.add is None else self.add(self.body(x), x)


class F8NetNetwork(nn.Module):
    """F8Net's fixed-point network for one recipe (its models/fix_resnet.py,
    fix_mobilenet_v1.py, fix_mobilenet_v2.py): head, ``stage_I_layer_J`` blocks, an optional
    tail (MobileNet V2's 1x1 conv to 1280 channels), the pooled classifier.

    Each block input's quantizer is built before the block that writes it. Where F8Net
    chains master layers, it shares the clipping level of the previous block's input: after
    a block with an identity shortcut, whose first layer is the master of the next.
    """

    def __init__(self, recipe: F8NetRecipe, num_classes: int = 1000) -> None:
        super().__init__()
        self.recipe = recipe
        self.quant = config = recipe.quant()
        if recipe.normalized_input:
            stem = ActQuant(config, signed=True)
        else:  # F8Net's "weight only" stem: pixels at FL 8, no clipping level
            stem = ActQuant(config, fixed_fraclen=8)
        resnet = recipe.arch.startswith("resnet")
        self.block_names: list[str] = []
        reads = ActQuant(config, signed=False)
        if resnet:
            head = [ReaderConv(config, stem, 3, 64, 7, 2, writes=reads), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        else:
            head = [ReaderConv(config, stem, 3, 32, 3, 2, writes=reads), nn.ReLU()]
        self.head = nn.Sequential(*head)
        specs = _block_specs(recipe.arch)
        classifier_quant = ActQuant(config)
        master: ActQuant | None = None
        for k, (name, inp, outp, stride, t, _) in enumerate(specs):
            identity = stride == 1 and inp == outp
            follows_master = identity and recipe.arch != "mobilenet_v1"
            if k + 1 < len(specs):
                next_signed = specs[k + 1].signed_input
            else:  # the tail's input (MobileNet V2, signed) or the classifier's
                next_signed = recipe.arch == "mobilenet_v2"
            last_block = k + 1 == len(specs) and recipe.arch != "mobilenet_v2"
            tie = reads if follows_master else None
            writes = classifier_quant if last_block else ActQuant(config, signed=next_signed, tied_to=tie)
            if recipe.arch == "mobilenet_v1":
                layer: nn.Module = DepthwiseSeparable(config, reads, writes, inp, outp, stride)
            elif recipe.arch == "mobilenet_v2":
                layer = InvertedResidual(config, reads, writes, inp, outp, stride, t)
            else:
                block = BasicBlock if recipe.arch == "resnet18" else Bottleneck
                shortcut = None if identity else ActQuant(config, tied_to=master)
                layer = block(config, reads, writes, shortcut, inp, outp, stride)
            setattr(self, name, layer)
            self.block_names.append(name)
            master = tie
            reads, channels = writes, outp
        self.tail: nn.Module = nn.Identity()
        if recipe.arch == "mobilenet_v2":
            self.tail = nn.Sequential(
                ReaderConv(config, reads, channels, 1280, 1, 1, writes=classifier_quant), nn.ReLU()
            )
            channels = 1280
        self.classifier = nn.Sequential(
            F8NetClassifier(config, classifier_quant, channels, num_classes, recipe.pool)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        for name in self.block_names:
            x = getattr(self, name)(x)
        return self.classifier(self.tail(x))


class BlockSpec(NamedTuple):
    name: str
    inp: int
    outp: int
    stride: int
    expansion: int  # MobileNet V2's t
    signed_input: bool


def _block_specs(arch: str) -> list[BlockSpec]:
    """F8Net's blocks, in order."""
    if arch.startswith("resnet"):
        expansion = 1 if arch == "resnet18" else 4
        counts = [2, 2, 2, 2] if arch == "resnet18" else [3, 4, 6, 3]
        stages = [(1, 64 * 2**i * expansion, count, 1 if i == 0 else 2) for i, count in enumerate(counts)]
        channels = 64
    elif arch == "mobilenet_v1":  # F8Net's stages: the runs of equal width
        stages = []
        for width, group in itertools.groupby(SEPARABLE_BLOCKS, key=lambda block: block[0]):
            strides = [stride for _, stride in group]
            stages.append((1, width, len(strides), strides[0]))
        channels = 32
    else:
        stages = list(INVERTED_RESIDUALS)
        channels = 32
    specs = []
    for i, (t, outp, count, stride) in enumerate(stages):
        for j in range(count):
            signed = arch == "mobilenet_v2" and i > 0  # its block inputs, after the first stage
            specs.append(
                BlockSpec(f"stage_{i}_layer_{j}", channels, outp, stride if j == 0 else 1, t, signed)
            )
            channels = outp
    return specs
