"""Arch and Network: what a model was built as, declared on the model itself."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from f8lab.nn import LayerKit
from f8lab.quant import QuantConfig

STEMS = ("imagenet", "small")


def _positive_int(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class Arch:
    """The architecture's arguments (``build_model``'s, without ``quant``)."""

    name: str               # one of list_models()
    num_classes: int = 1000  # classifier outputs
    stem: str = "imagenet"   # "imagenet" (224x224 input) or "small" (28x28 or 32x32 input)
    in_channels: int = 3     # image channels (1 for Fashion-MNIST)
    width: float = 1.0       # width multiplier of every layer

    def __post_init__(self) -> None:
        _positive_int("num_classes", self.num_classes)
        _positive_int("in_channels", self.in_channels)
        if self.stem not in STEMS:
            raise ValueError(f"unknown stem {self.stem!r}; choose one of {', '.join(STEMS)}")
        width = self.width
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width < math.inf:
            raise ValueError(f"width multiplier must be a positive number, got {width!r}")

    @property
    def image_size(self) -> int:
        """The side of the images the stem is made for."""
        return 224 if self.stem == "imagenet" else 28


class Network(nn.Module):
    """A model built from a LayerKit: ``arch`` says what it was built as, ``quant`` its
    QuantConfig (None for a float model). Every architecture of f8lab.models is one."""

    arch: Arch
    quant: QuantConfig | None

    def __init__(self, kit: LayerKit, arch: Arch) -> None:
        super().__init__()
        self.arch, self.quant = arch, kit.quant
