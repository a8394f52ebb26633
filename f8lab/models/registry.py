"""build_model / list_models / from_float: the architectures by name, float or fixed point."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from f8lab.models.mobilenet_v1 import MobileNetV1
from f8lab.models.mobilenet_v2 import MobileNetV2
from f8lab.models.network import Arch, Network
from f8lab.models.resnet import resnet18, resnet50
from f8lab.nn import ActQuant, LayerKit
from f8lab.quant import QuantConfig

BUILDERS = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v1": MobileNetV1,
    "mobilenet_v2": MobileNetV2,
}


def list_models() -> list[str]:
    """The architecture names ``build_model`` accepts."""
    return sorted(BUILDERS)


def build_model(
    name: str,
    num_classes: int = 1000,
    quant: QuantConfig | None = None,
    stem: str = "imagenet",
    in_channels: int = 3,
    width: float = 1.0,
) -> Network:
    """Build an architecture, float (``quant=None``) or fixed point.

    Args:
        name: one of ``list_models()``.
        num_classes: classifier outputs.
        quant: a QuantConfig for the fixed-point model, None for the float one.
        stem: "imagenet" (224x224 input) or "small" (28x28 or 32x32 input).
        in_channels: image channels (1 for Fashion-MNIST).
        width: width multiplier of every layer.

    Returns:
        The model; ``arch_of(model)`` gives these arguments back (without ``quant``),
        ``quant_of(model)`` the QuantConfig.
    """
    return build_arch(Arch(name, num_classes, stem, in_channels, width), quant)


def build_arch(arch: Arch, quant: QuantConfig | None = None) -> Network:
    """``build_model`` from an Arch: the same architecture again, float or fixed point."""
    if arch.name not in BUILDERS:
        raise ValueError(f"unknown model {arch.name!r}; choose one of {', '.join(list_models())}")
    if quant is not None and not isinstance(quant, QuantConfig):
        raise TypeError(f"quant must be a QuantConfig or None, got {type(quant).__name__}")
    return BUILDERS[arch.name](LayerKit(quant), arch)


def arch_of(model: nn.Module) -> Arch:
    """What a model was built as: its Network's ``arch`` (an AffineQAT model's too)."""
    arch = getattr(model, "arch", None)
    if not isinstance(arch, Arch):
        raise ValueError(
            f"{type(model).__name__} was not built by f8lab.models.build_model: "
            "this needs the architecture it was built as"
        )
    return arch


def quant_of(model: nn.Module) -> QuantConfig | None:
    """The QuantConfig a model was built with (a Network's, or its quantizers'); None: float."""
    if isinstance(model, Network):
        return model.quant
    return next((m.config for m in model.modules() if isinstance(m, ActQuant)), None)


def is_fixed_point(model: nn.Module) -> bool:
    """True for a model built with a QuantConfig."""
    return quant_of(model) is not None


def fixed_point_only_keys(model: nn.Module) -> set[str]:
    """State-dict keys that a fixed-point model has and its float version lacks."""
    float_model = build_arch(arch_of(model))
    return set(model.state_dict()) - set(float_model.state_dict())


def load_float_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load float weights (torchvision's names) into a float or fixed-point model.

    Every key of ``state_dict`` must be used, and every float parameter and statistic of
    the model must be given; the fixed-point extras (α, FL buffers) keep their values.
    """
    own = model.state_dict()
    extras = fixed_point_only_keys(model) if is_fixed_point(model) else set()
    missing = [k for k in own if k not in state_dict and k not in extras]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in state_dict
        if k in own and state_dict[k].shape != own[k].shape
    ]
    report = key_mismatches(missing, unexpected, mismatched)
    if report:
        raise ValueError(
            f"state dict does not fit {arch_of(model).name} ({arch_of(model)}): {report}. "
            "Check the architecture, stem, width, number of classes and input channels"
        )
    model.load_state_dict(state_dict, strict=False)


def key_mismatches(missing: list[str], unexpected: list[str], mismatched: list[str]) -> str:
    """How a state dict does not fit a model, with the first three of each kind; "" if it fits.
    ``mismatched`` entries read ``"key (given shape) vs (model's shape)"``."""
    return "; ".join(
        f"{len(keys)} {what}, first: {', '.join(keys[:3])}"
        for keys, what in (
            (missing, "missing key(s)"),
            (unexpected, "unexpected key(s)"),
            (mismatched, "shape mismatch(es) (given vs model)"),
        )
        if keys
    )


def from_float(float_model: nn.Module, quant: QuantConfig) -> nn.Module:
    """A fixed-point model with the float model's conv weights, BN parameters and statistics."""
    if is_fixed_point(float_model):
        raise ValueError("from_float takes a float model; this one is already fixed point")
    model = build_arch(arch_of(float_model), quant)
    load_float_state_dict(model, float_model.state_dict())
    return model.to(next(float_model.parameters()).device)
