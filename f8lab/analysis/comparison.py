"""Fixed point against its rivals: what a quantized model keeps of its weights, and what
its integer form stores.

``weight_zero_shares`` reads an F8Net fixed-point model or a torch.ao affine QAT model the
same way: per layer, the share of its quantized weights that are zero and the weight
step. ``integer_model_bytes`` counts what an integer model of an architecture stores at a
word length.
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.ao.quantization as tq
from torch import nn

from f8lab.baselines import AffineQAT
from f8lab.models import forward_hooks
from f8lab.nn import WeightQuant


def _weight_quantizers(model: nn.Module) -> dict[str, nn.Module]:
    """The module that quantizes each layer's weights, by layer name: F8Net's WeightQuant,
    or torch.ao's weight fake quantizer."""
    if isinstance(model, AffineQAT):
        return {
            name.removeprefix("network.").removesuffix(".weight_fake_quant"): module
            for name, module in model.named_modules()
            if name.endswith("weight_fake_quant")
        }
    return {
        name.rsplit(".", 1)[0]: module
        for name, module in model.named_modules()
        if isinstance(module, WeightQuant)
    }


def _step(quantizer: nn.Module) -> float:
    """The weight grid's step: ``2^-FL`` (the mean over channels when per channel), or the
    affine scale."""
    if isinstance(quantizer, WeightQuant):
        return float(torch.exp2(-quantizer.fraclen.double()).mean())
    assert isinstance(quantizer, tq.FakeQuantize)
    return float(quantizer.scale.double().mean())


@torch.no_grad()
def weight_zero_shares(model: nn.Module, images: torch.Tensor) -> pd.DataFrame:
    """Per layer (network order): ``zero_share``, the share of its quantized weights that
    are zero (the BN-folded weights, as the integer model holds them), ``dead_channels``,
    the share of output channels whose weights are all zero, and ``step``, the weight grid's
    step. An evaluation pass on ``images`` (the model's mode is restored)."""
    quantizers = _weight_quantizers(model)
    if not quantizers:
        raise ValueError(
            f"{type(model).__name__} quantizes no weights: give a fixed-point "
            "model or a torch.ao affine QAT model"
        )
    names = {q: name for name, q in quantizers.items()}
    seen: dict[str, torch.Tensor] = {}
    training = model.training
    try:
        with forward_hooks(names, lambda m, i, out: seen.__setitem__(names[m], out)):
            model.eval()(images)
    finally:
        model.train(training)
    rows = [
        dict(
            layer=name,
            zero_share=float((w == 0).double().mean()),
            dead_channels=float((w.flatten(1) == 0).all(1).double().mean()),
            step=_step(quantizers[name]),
        )
        for name, w in seen.items()
    ]
    return pd.DataFrame(rows)


def integer_model_bytes(model: nn.Module, wl: int) -> dict[str, int]:
    """What an integer model of ``model``'s architecture stores: its convolution and
    classifier weights packed at ``wl`` bits, and one int32 bias per output channel (the
    folded BatchNorm). The rescale constants (a shift per layer for fixed point, an int32
    multiplier and a shift for affine) add a few bytes per layer, not counted."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    weights = sum(m.weight.numel() for m in layers)
    outputs = sum(m.weight.shape[0] for m in layers)
    return {
        "weights": weights,
        "weight_bytes": -(-weights * wl // 8),
        "bias_bytes": 4 * outputs,
        "total_bytes": -(-weights * wl // 8) + 4 * outputs,
    }
