"""Small synthetic image data sets for tests and smoke runs: no files, fully seeded."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset


def synthetic_images(
    n: int = 64, channels: int = 1, size: int = 28, num_classes: int = 10, seed: int = 0
) -> TensorDataset:
    """``n`` random images in [0, 1) on the 1/256 grid, shape (channels, size, size), with labels."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (n, channels, size, size), generator=generator)
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    return TensorDataset(pixels.float() / 256, labels)
