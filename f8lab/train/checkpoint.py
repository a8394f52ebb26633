"""Checkpoints: written atomically (temp file, fsync, rename), loaded back into models."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from f8lab.models import build_model
from f8lab.quant import QuantConfig

KIND = "f8lab-checkpoint"


def save_atomic(state: dict, path: Path) -> None:
    """Write ``state`` to ``path`` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_state(model: nn.Module) -> dict:
    """What a checkpoint needs to rebuild ``model``: architecture, quant settings, weights."""
    quant = getattr(model, "quant", None)
    return {"kind": KIND, "arch": dict(model.arch),
            "quant": dataclasses.asdict(quant) if quant is not None else None,
            "model": model.state_dict()}


def read_checkpoint(path: str | Path) -> dict:
    """Load an f8lab checkpoint, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or state.get("kind") != KIND:
        raise ValueError(f"{path} is not an f8lab checkpoint (written by `f8lab train`)")
    return state


def load_model(path: str | Path) -> nn.Module:
    """Rebuild the model saved in a checkpoint (float or fixed point), in eval mode."""
    return model_from_state(read_checkpoint(path))


def model_from_state(state: dict) -> nn.Module:
    """Rebuild the model of a checkpoint already read by ``read_checkpoint``, in eval mode."""
    quant = QuantConfig(**state["quant"]) if state["quant"] is not None else None
    model = build_model(**state["arch"], quant=quant)
    model.load_state_dict(state["model"], strict=True)
    return model.eval()
