"""Layer kits: the layer types an architecture is built from, float or fixed point.

An architecture is written once against a kit, as torchvision passes ``norm_layer``: the
float kit gives torch layers, the fixed-point kit gives f8lab's, with the same parameter
names, so a float checkpoint loads into either. A block builds each tensor's quantizer first
and hands it to the layers that write and read the tensor; the float kit's layers ignore them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

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

    def conv(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        *,
        norm: nn.Module,
        reads: nn.Module,
        writes: nn.Module | None,
    ) -> nn.Module:
        """A convolution followed by ``norm`` (built first, with ``norm(channels)``), reading
        the tensor of ``reads`` and writing the tensor of ``writes`` (None: logits)."""
        padding = (kernel_size - 1) // 2
        if self.fixed_point:
            return FixConv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                groups,
                config=self.config,
                bn=_fixed(norm, nn.BatchNorm2d),
                input_quant=_fixed(reads, ActQuant),
                output_quant=None if writes is None else _fixed(writes, ActQuant),
            )
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False)

    def norm(self, channels: int) -> nn.Module:
        return FoldedBatchNorm2d(channels) if self.fixed_point else nn.BatchNorm2d(channels)

    def act(self, max_value: float | None = None, tied_to: nn.Module | None = None) -> nn.Module:
        """ReLU (or ReLU6 with ``max_value=6``); fixed point: an unsigned ActQuant, sharing the
        clipping level of ``tied_to`` (an identity path's other end) if the config shares."""
        if self.fixed_point:
            return ActQuant(self.config, signed=False, max_value=max_value, tied_to=self._tie(tied_to))
        return nn.ReLU6(inplace=True) if max_value == 6 else nn.ReLU(inplace=True)

    def signed_act(self, tied_to: nn.Module | None = None) -> nn.Module:
        """No activation (a linear bottleneck's output); fixed point: a signed ActQuant."""
        if self.fixed_point:
            return ActQuant(self.config, signed=True, tied_to=self._tie(tied_to))
        return nn.Identity()

    def _tie(self, quantizer: nn.Module | None) -> ActQuant | None:
        if quantizer is None or not self.config.share_clipping:
            return None
        return _fixed(quantizer, ActQuant)

    def image_input(self) -> nn.Module:
        """The image's format: pixels/256 at unsigned FL 8, or signed FL 5 when normalised."""
        if not self.fixed_point:
            return nn.Identity()
        signed = self.config.signed_input
        fraclen = min(5, self.config.wl - 1) if signed else self.config.wl
        return ActQuant(self.config, signed=signed, fixed_fraclen=fraclen)

    def add(self, *, out: nn.Module, identity: nn.Module | None) -> Add | FixAdd:
        """The residual add writing ``out``'s tensor; ``identity``: the block input's quantizer,
        None for a projection shortcut. The convs before it write ``branch_target`` and
        ``shortcut_target``."""
        if not self.fixed_point:
            return Add()
        identity_quant = None if identity is None else _fixed(identity, ActQuant)
        return FixAdd(self.config, _fixed(out, ActQuant), identity_quant)

    def global_pool(self) -> nn.Module:
        """Global average pool + flatten; fixed point: folded into the classifier."""
        if self.fixed_point:
            return nn.Identity()
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))

    def dropout(self, p: float) -> nn.Module:
        return nn.Identity() if self.fixed_point else nn.Dropout(p)

    def linear(self, in_features: int, out_features: int, *, reads: nn.Module) -> nn.Module:
        """The classifier, reading the last feature map (the tensor of ``reads``)."""
        if self.fixed_point:
            return FixLinear(
                in_features,
                out_features,
                config=self.config,
                input_quant=_fixed(reads, ActQuant),
                rescale_forward=self.config.rescale_classifier,
            )
        return nn.Linear(in_features, out_features)


Layer = TypeVar("Layer", bound=nn.Module)


def _fixed(module: nn.Module, kind: type[Layer]) -> Layer:
    """``module`` as the fixed-point kit built it: a float layer here is a programming error."""
    if not isinstance(module, kind):
        raise TypeError(
            f"a fixed-point layer takes a {kind.__name__} here, got "
            f"{type(module).__name__}: build it with the same fixed-point kit"
        )
    return module
