"""The values a network quantizes: its weights (raw and BN-folded) and the inputs of its
layers, gathered from a trained float model, with the statistics the formula reads and
how close each tensor is to the Gaussian (or rectified Gaussian) that docs/method.md §2 assumes.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from f8lab.models import forward_hooks, from_float, is_fixed_point
from f8lab.models.describe import quantized_layers
from f8lab.nn import ActQuant, FixConv2d
from f8lab.quant import QuantConfig

KINDS = ("weight", "folded weight", "activation")


@dataclasses.dataclass
class ModelTensor:
    """One tensor the fixed-point network quantizes.

    ``values`` are weights ``(C_out, C_in/groups, k, k)`` or ``(C_out, C_in)``, or
    activations ``(N, C, H, W)`` / ``(N, C)`` as the quantizer receives them: for an
    unsigned quantizer that is the pre-ReLU tensor (the quantizer performs the ReLU), the σ
    the unsigned formula reads.
    """

    name: str
    kind: str
    signed: bool
    values: torch.Tensor

    @property
    def label(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def channel_dim(self) -> int:
        return 1 if self.kind == "activation" else 0

    def quantized_values(self) -> torch.Tensor:
        """What the quantizer approximates: the tensor, or ``relu`` of it when unsigned."""
        return self.values if self.signed else self.values.clamp(min=0)


def model_tensors(model: nn.Module, images: torch.Tensor) -> list[ModelTensor]:
    """Weights, BN-folded weights and layer inputs of ``model`` on ``images``.

    A float model is viewed through its fixed-point twin in floating, no-clipping mode
    (the same network exactly, ``from_float``), so every tensor is named and signed as the
    8-bit model will quantize it. A fixed-point model is read in evaluation mode: its
    activations are ``u = x / s`` and its folded weights carry the PACT scales, the tensors
    its quantizers see. The model's own mode and weights are left untouched.
    """
    fixed = is_fixed_point(model)
    twin = copy.deepcopy(model) if fixed else from_float(model, QuantConfig(floating=True, clipping=False))
    twin.eval()
    captured: dict[ActQuant, torch.Tensor] = {}
    quantizers = [module for module in twin.modules() if isinstance(module, ActQuant)]
    with (
        forward_hooks(quantizers, lambda m, args: captured.setdefault(m, args[0].detach()), pre=True),
        torch.no_grad(),
    ):
        twin(images)
    tensors = []
    with torch.no_grad():
        for name, module, quantizer in quantized_layers(twin):
            if quantizer in captured:
                tensors.append(ModelTensor(name, "activation", quantizer.signed, captured[quantizer]))
            tensors.append(ModelTensor(name, "weight", True, module.weight.detach().clone()))
            if isinstance(module, FixConv2d):
                tensors.append(ModelTensor(name, "folded weight", True, module.folded(None)[0]))
    return tensors


def channel_std(tensor: ModelTensor) -> torch.Tensor:
    """The standard deviation of each channel (output channels of weights, channels of
    activations)."""
    x = tensor.values.transpose(0, tensor.channel_dim).flatten(1)
    return x.std(dim=1, correction=0)


def gaussian_distance(tensor: ModelTensor, max_samples: int = 100_000, seed: int = 0) -> float:
    """Kolmogorov-Smirnov distance between the tensor and the model the formula assumes:
    ``N(0, σ²)`` for a signed quantizer, ``relu(N(0, σ²))`` for an unsigned one, σ the
    tensor's std (the pre-ReLU std for an unsigned one). 0 is a perfect match."""
    values = tensor.values.flatten().double()
    if values.numel() > max_samples:
        pick = torch.randperm(values.numel(), generator=torch.Generator().manual_seed(seed))
        values = values[pick[:max_samples]]
    sigma = float(values.std(correction=0))
    if sigma == 0.0:
        return 1.0
    if not tensor.signed:
        values = values.clamp(min=0)
    x = np.sort(values.numpy())
    model = torch.special.ndtr(torch.from_numpy(x / sigma)).numpy()  # CDF at x and just below
    left = model
    if not tensor.signed:  # the rectified Gaussian holds its whole negative half at 0
        model, left = np.where(x > 0, model, 0.5), np.where(x > 0, model, 0.0)
    n = len(x)
    above = np.arange(1, n + 1) / n - model
    below = left - np.arange(n) / n
    return float(max(above.max(), below.max()))


def value_stats(tensors: list[ModelTensor]) -> pd.DataFrame:
    """A row per tensor: its statistics and its distance to the assumed Gaussian.

    Columns: layer, kind, signed, numel, mean, std, mean_abs, rms (of the quantized values),
    excess kurtosis (0 for a Gaussian), the spread of the channel stds (max / min) and
    ``ks_gaussian`` (see ``gaussian_distance``).
    """
    rows = []
    for tensor in tensors:
        x = tensor.values.double()
        std = float(x.std(correction=0))
        centred = x - x.mean()
        kurtosis = float(centred.pow(4).mean() / std**4 - 3.0) if std > 0 else math.nan
        stds = channel_std(tensor)
        target = tensor.quantized_values().double()
        rows.append(
            dict(
                layer=tensor.name,
                kind=tensor.kind,
                signed=tensor.signed,
                numel=x.numel(),
                mean=float(x.mean()),
                std=std,
                mean_abs=float(target.abs().mean()),
                rms=float(target.square().mean().sqrt()),
                kurtosis=kurtosis,
                channel_std_spread=float(stds.max() / stds.min().clamp(min=1e-12)),
                ks_gaussian=gaussian_distance(tensor),
            )
        )
    return pd.DataFrame(rows)
