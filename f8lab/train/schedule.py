"""Learning-rate schedule per iteration: linear warm-up, then cosine decay or constant."""

from __future__ import annotations

import math


def lr_factor(iteration: int, total: int, warmup: int, schedule: str) -> float:
    """The multiplier of the base learning rate at ``iteration`` (0-based) of ``total``."""
    if iteration < warmup:
        return (iteration + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (iteration - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
