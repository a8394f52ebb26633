"""Arch and Network: what a model was built as, declared on the model itself."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from f8lab.nn import LayerKit
from f8lab.quant import QuantConfig
from f8lab.settings import check_settings, positive, setting

STEMS = ("imagenet", "small")


@dataclass(frozen=True)
class Arch:
    """The architecture's arguments (``build_model``'s, without ``quant``)."""

    name: str  # one of list_models()
    num_classes: int = setting(1000, check=positive)  # classifier outputs
    stem: str = setting("imagenet", choices=STEMS)  # "imagenet" (224x224) or "small" (28x28, 32x32)
    in_channels: int = setting(3, check=positive)  # image channels (1 for Fashion-MNIST)
    width: float = setting(1.0, check=positive)  # width multiplier of every layer

    def __post_init__(self) -> None:
        check_settings(self)

    @property
    def image_size(self) -> int:
        """The side of the images the stem is made for."""
        return 224 if self.stem == "imagenet" else 28


class Network(nn.Module):
    """An architecture of f8lab.models: what it was built as (``arch``) and how (``quant``)."""

    arch: Arch
    quant: QuantConfig | None

    def __init__(self, kit: LayerKit, arch: Arch) -> None:
        super().__init__()
        self.arch, self.quant = arch, kit.quant
