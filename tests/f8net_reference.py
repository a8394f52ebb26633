"""The F8Net references: the state-dict manifests of F8Net's model-zoo networks and their
logits on deterministic weights, as F8Net's own code computed them.

``tests/fixtures/f8net/make_reference.py`` writes one JSON file per zoo row from an F8Net
checkout; the tests rebuild the same weights and inputs from the manifest alone
(``deterministic_state``, ``deterministic_input``) and compare f8lab's logits with F8Net's.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import torch

FIXTURES = Path(__file__).parent / "fixtures" / "f8net"
IMAGE_SIZE = 64  # small images: every stage still runs, and F8Net's pools take any size


def references() -> list[dict]:
    """One reference per recipe: ``{"rows", "f8net_commit", "manifest", "logits"}``;
    ``manifest`` lists ``[key, shape, dtype]`` in F8Net's state-dict order."""
    return [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))]


def reference(row: str) -> dict:
    """The reference of the recipe of one zoo row."""
    return next(ref for ref in references() if row in ref["rows"])


def _generator(key: str) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(key.encode()))


def deterministic_value(key: str, shape: list[int], dtype: str) -> torch.Tensor:
    """A plausible value for one state-dict entry, drawn from a generator seeded by its key."""
    g, leaf = _generator(key), key.rsplit(".", 1)[-1]
    if dtype == "torch.int64":
        return torch.zeros(shape, dtype=torch.int64)
    if leaf == "weight" and len(shape) >= 2:  # conv / linear weights: Kaiming's scale, heavy
        # tails (a normal times a log-normal), where the std formula and grid search disagree
        w = torch.randn(shape, generator=g, dtype=torch.float64)
        w = w * torch.exp(torch.randn(shape, generator=g, dtype=torch.float64))
        return w / w.std() * math.sqrt(2.0 / math.prod(shape[1:]))
    if leaf == "running_var":
        return 0.5 + torch.rand(shape, generator=g, dtype=torch.float64)
    if leaf == "weight":  # BatchNorm γ
        return 1.0 + 0.2 * (torch.rand(shape, generator=g, dtype=torch.float64) - 0.5)
    if leaf == "alpha":  # clipping levels
        return 0.5 + 2.0 * torch.rand(shape, generator=g, dtype=torch.float64)
    if leaf == "input_fraclen":  # running FLs, between formats so that rounding matters
        return 2.6 + 4.0 * torch.rand(shape, generator=g, dtype=torch.float64)
    return 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)  # biases, running means


def deterministic_state(manifest: list) -> dict[str, torch.Tensor]:
    """Every entry of a manifest with its deterministic value (keys as listed)."""
    return {key: deterministic_value(key, shape, dtype) for key, shape, dtype in manifest}


def deterministic_input(normalized: bool) -> torch.Tensor:
    """Two images of IMAGE_SIZE²: pixels k/256 (exact at FL 8, so F8Net's unquantized stem
    input and f8lab's FL-8 image agree), or normalised images for a quantizing stem."""
    g = _generator("input")
    pixels = torch.randint(0, 256, (2, 3, IMAGE_SIZE, IMAGE_SIZE), generator=g).double() / 256
    if not normalized:
        return pixels
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    return (pixels - mean) / std
