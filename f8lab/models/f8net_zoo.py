"""F8Net's model-zoo files: their state dicts, mapped onto f8lab's F8Net layout.

A zoo file is ``{"model": state_dict}`` saved from a DistributedDataParallel wrapper (keys
start with ``module.``). Each quantized layer of F8Net's code holds ``conv.weight``, ``bn.*``,
a clipping level ``alpha`` and, in the 8-bit files, a running FL ``input_fraclen`` (the float
files track none); the layout's ``ReaderConv`` holds the same under ``conv``, ``bn`` and
``quant`` (``quant.alpha``, ``quant.ema.fraclen``).
F8Net keeps an ``alpha`` in every layer, also where the layer takes its master's, or where
its recipe has no clipping, and an ``input_fraclen`` in the stem that reads pixels; those
entries are checked and left unused. The recipe (``f8net_layout.ZOO``) says what the file's
state dict does not: how the network was trained.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from f8lab.models.f8net_layout import ZOO, F8NetClassifier, F8NetNetwork, ReaderConv
from f8lab.models.registry import key_mismatches
from f8lab.nn import ActQuant

BN_ENTRIES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _quantizer_entries(prefix: str, quant: ActQuant) -> dict[str, str | None]:
    names = {f"{prefix}alpha": f"{prefix}quant.alpha" if quant.alpha is not None else None}
    if not quant.config.floating:  # F8Net's float models hold no FL buffers
        names[f"{prefix}input_fraclen"] = f"{prefix}quant.ema.fraclen" if quant.tracked else None
    return names


def key_map(model: F8NetNetwork) -> dict[str, str | None]:
    """Every key of F8Net's state dict for this network (without ``module.``), and the key
    of the layout's that it loads into (None: F8Net's entry is unused here)."""
    names: dict[str, str | None] = {}
    for path, module in model.named_modules():
        prefix = f"{path}."
        if isinstance(module, ReaderConv):
            names.update(_quantizer_entries(prefix, module.quant))
            names[f"{prefix}conv.weight"] = f"{prefix}conv.weight"
            names.update({f"{prefix}bn.{e}": f"{prefix}bn.{e}" for e in BN_ENTRIES})
        elif isinstance(module, F8NetClassifier):
            names.update({f"{prefix}{e}": f"{prefix}{e}" for e in ("weight", "bias")})
            names.update(_quantizer_entries(prefix, module.quant))
    return names


def check_keys(model: F8NetNetwork, state: Mapping[str, torch.Tensor], row: str) -> None:
    """Refuse a state dict that is not F8Net's network for ``row``, naming the first
    missing and unexpected keys and shape mismatches, or a class count other than the file's."""
    classes, bias = model.classifier[0].out_features, state.get("classifier.0.bias")
    if bias is not None and bias.numel() != classes:
        raise ValueError(
            f"F8Net's file has {bias.numel()} classes where {classes} are asked for: evaluate it "
            f"with model.num_classes: {bias.numel()} (its data set's config, e.g. configs/imagenet/)"
        )
    names, own = key_map(model), model.state_dict()
    missing = [k for k in names if k not in state]
    unexpected = [k for k in state if k not in names]
    mismatched = []
    for key, target in names.items():
        if key in state and target is not None and state[key].numel() != own[target].numel():
            mismatched.append(f"{key} {tuple(state[key].shape)} vs {tuple(own[target].shape)}")
    report = key_mismatches(missing, unexpected, mismatched)
    if report:
        keys = sorted(state) if missing or unexpected else None  # a row with these keys, if not row's
        fits = [r for r in ZOO if sorted(key_map(F8NetNetwork(ZOO[r]))) == keys]
        hint = f" (an F8Net {ZOO[fits[0]].kind} {ZOO[fits[0]].arch} file? try row {fits[0]})" if fits else ""
        raise ValueError(f"this is not F8Net's {row} network ({ZOO[row].arch}){hint}: {report}")


def strip_wrapper(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict without the ``module.`` prefix of a (Distributed)DataParallel wrapper."""
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_f8net_state(model: F8NetNetwork, state: Mapping[str, torch.Tensor], row: str) -> None:
    """Load an F8Net state dict (``module.`` prefix or not) into the layout, checked first."""
    state = strip_wrapper(state)
    check_keys(model, state, row)
    own = model.state_dict()
    for key, target in key_map(model).items():
        if target is not None:
            own[target] = state[key].reshape(own[target].shape).to(own[target].dtype)
    for path, module in model.named_modules():
        if isinstance(module, ActQuant) and module.tracked:
            own[f"{path}.ema.updates"] = torch.ones_like(own[f"{path}.ema.updates"])  # calibrated
    model.load_state_dict(own)


def load_f8net_zoo(state: Mapping[str, torch.Tensor], row: str, num_classes: int = 1000) -> F8NetNetwork:
    """F8Net's network for a model-zoo ``row`` (a key of ``f8net_layout.ZOO``) with the weights
    of a zoo file's state dict (``f8lab.train.checkpoint.read_f8net_file``), in eval mode."""
    if row not in ZOO:
        raise ValueError(f"unknown F8Net model-zoo row {row!r}; choose one of {', '.join(ZOO)}")
    model = F8NetNetwork(ZOO[row], num_classes)
    load_f8net_state(model, state, row)
    return model.eval()


def is_f8net_state(state: object) -> bool:
    """Whether a loaded file is one of F8Net's code (its layer names, maybe ``module.``-prefixed)."""
    weights = state.get("model") if isinstance(state, dict) else None
    names = {str(key).removeprefix("module.") for key in weights} if isinstance(weights, dict) else set()
    return {"head.0.conv.weight", "classifier.0.weight"} <= names
