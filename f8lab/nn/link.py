"""Link: a module a layer uses but does not own, held by reference from the layer's ``__init__``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from torch import nn

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class Link(Generic[M]):
    """``module``, registered once where the architecture defines it (names stay torchvision's)."""

    module: M
