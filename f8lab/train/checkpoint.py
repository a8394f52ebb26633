"""Checkpoints: written atomically (temp file, fsync, rename), loaded back into models.

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only,
so a file that pickles other Python objects (which could run code) is refused.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from f8lab.baselines import AffineConfig, affine_config_of, prepare_affine_qat
from f8lab.models import build_model
from f8lab.models.f8net_layout import ZOO
from f8lab.models.f8net_zoo import is_f8net_state
from f8lab.models.registry import arch_of, quant_of
from f8lab.quant import QuantConfig
from f8lab.settings import upgraded

KIND = "f8lab-checkpoint"


class CheckpointError(ValueError):
    """A file is not a checkpoint f8lab can load; the message says why and what to do."""


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
    """What a checkpoint needs to rebuild ``model``: architecture, quant settings (F8Net's or
    torch.ao's affine ones), weights."""
    quant, affine = quant_of(model), affine_config_of(model)
    return {
        "kind": KIND,
        "arch": dataclasses.asdict(arch_of(model)),
        "quant": dataclasses.asdict(quant) if quant is not None else None,
        "affine": dataclasses.asdict(affine) if affine is not None else None,
        "model": model.state_dict(),
    }


def load_tensors(path: str | Path) -> Any:
    """``torch.load`` of tensors and plain containers, with a clear error for a missing,
    damaged or unsafe file, or one of F8Net's own code (read those with ``read_f8net_file``)."""
    state = _load(path)
    if is_f8net_state(state):
        raise CheckpointError(
            f"{path} is a checkpoint of F8Net's own code (head.0.conv, stage_0_layer_0, "
            "classifier.0): F8Net quantizes a tensor where each layer reads it and keeps the "
            "residual path unquantized, f8lab's networks quantize it once where it is written, "
            "so these weights compute F8Net's network only. f8lab evaluates them in that "
            f"layout: f8lab eval {path} --f8net ROW --config CONFIG (ROW one of "
            f'{", ".join(ZOO)}; docs/guide.md, "F8Net\'s model-zoo files"), exports the 8-bit '
            "ones with f8lab export ... --f8net ROW, and does not train or fine-tune them. "
            "To train f8lab's network from the paper's "
            "starting point, use PytorchCV's float weights: --init ptcv:resnet18 (or resnet50b, "
            'mobilenet_w1, mobilenetv2b_w1; docs/method.md, "F8Net\'s published models")'
        )
    return state


def read_f8net_file(path: str | Path) -> dict:
    """The state dict of one of F8Net's model-zoo files (``{"model": state_dict}``)."""
    state = _load(path)
    if not is_f8net_state(state):
        raise CheckpointError(
            f"{path} is not a file of F8Net's code (its model zoo holds {{'model': state dict}} "
            "with head.0.conv and classifier.0 layers): drop --f8net for f8lab's own checkpoints"
        )
    return state["model"]


def _load(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"checkpoint {path} {what}")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol: refused below anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = re.search(r"GLOBAL (\S+)", str(error))
        if unsafe:
            raise CheckpointError(
                f"{path} refused: it pickles the Python object {unsafe.group(1)}, and loading "
                "it could run code; f8lab loads tensors and plain containers only, as "
                "`f8lab train` writes them"
            ) from None
        raise CheckpointError(
            f"{path} is damaged or not a checkpoint (not a torch.save file of tensors)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError) as error:
        # what torch's unpickler raises on bytes that are not a checkpoint
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path} cannot be read ({first}): the file is truncated, damaged or not a checkpoint"
        ) from None


def read_checkpoint(path: str | Path) -> dict:
    """Load an f8lab checkpoint, with a clear error for anything else."""
    state = load_tensors(path)
    if not isinstance(state, dict) or state.get("kind") != KIND:
        raise CheckpointError(f"{path} is not an f8lab checkpoint (written by `f8lab train`)")
    return state


def load_model(path: str | Path) -> nn.Module:
    """Rebuild the model saved in a checkpoint (float or fixed point), in eval mode."""
    return model_from_state(read_checkpoint(path))


def model_from_state(state: dict) -> nn.Module:
    """Rebuild the model of a checkpoint already read by ``read_checkpoint``, in eval mode."""
    model: nn.Module
    if state.get("affine") is not None:
        model = prepare_affine_qat(
            build_model(**state["arch"]), AffineConfig(**upgraded(AffineConfig, state["affine"]))
        )
        model.load_state_dict(state["model"], strict=True)
        return model.eval()
    quant = QuantConfig(**upgraded(QuantConfig, state["quant"])) if state["quant"] is not None else None
    model = build_model(**state["arch"], quant=quant)
    model.load_state_dict(state["model"], strict=True)
    return model.eval()
