"""Link: a module a layer uses but does not own, held by reference from the layer's ``__init__``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from torch import nn

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class Link(Generic[M]):
    """A reference to ``module``, which is registered where the architecture defines it.

    Assigning a module to a layer's attribute would register it a second time, under the
    layer's name; a Link keeps state-dict names torchvision's and each module in one place.
    ``copy.deepcopy`` of a model maps the link to the copied module.
    """

    module: M
