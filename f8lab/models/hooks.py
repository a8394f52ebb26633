"""Forward hooks held for one block of code: what the studies, the exporter and the
baselines use to watch a pass through a model."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

from torch import nn


@contextlib.contextmanager
def forward_hooks(modules: Iterable[nn.Module], hook: Callable, pre: bool = False) -> Iterator[None]:
    """``hook`` on each of ``modules`` (a forward hook ``hook(module, inputs, output)``, or
    with ``pre`` a forward pre-hook ``hook(module, inputs)``) inside the ``with`` block;
    removed when it ends, however it ends."""
    handles = [m.register_forward_pre_hook(hook) if pre else m.register_forward_hook(hook) for m in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
