"""Integer-only affine QAT with torch.ao (Jacob et al., 2018): the scheme F8Net argues against.

Every tensor has an affine format ``x ≈ s · (q − z)`` with a real scale ``s`` and a zero
point ``z``, observed during training (moving-average min/max); convolutions are fused with
their BatchNorm (folded with the running statistics, corrected to the batch's) and ReLU.
At inference each output is rescaled by ``s_x · s_w / s_y``, a real number that integer
hardware applies as an int32 multiplier and a shift (``f8lab.analysis.affine_multiplier``):
one 32-bit multiply per output, where fixed point needs only a shift.

``prepare_affine_qat`` turns a float model of the kit into the fake-quant training model;
``convert_to_int8`` gives torch.ao's int8 model of it, run by the QNNPACK engine, whose
kernels accumulate exactly in int32 on every CPU (FBGEMM's need 7-bit activations on CPUs
without VNNI). Word lengths below 8 restrict the int8 ranges (``quant_min``, ``quant_max``).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.ao.quantization as tq
from torch import nn

from f8lab.models.hooks import forward_hooks
from f8lab.models.network import Arch
from f8lab.models.registry import arch_of, quant_of
from f8lab.nn.residual import Add
from f8lab.quant.config import word_length
from f8lab.settings import check_settings, setting, up_to_one

ENGINE = "qnnpack"
OBSERVERS = ("minmax",)


def _int8_word_length(value: int) -> str | None:
    if value > 8:
        return "must be at most 8: torch.ao's int8 kernels hold at most 8 bits"
    return word_length(value)


@dataclass(frozen=True)
class AffineConfig:
    """torch.ao affine QAT settings: activations unsigned ``wl``-bit affine per tensor,
    weights signed symmetric ``wl``-bit (range ±(2^(wl−1) − 1), as the fixed-point
    weights), per tensor or per output channel."""

    wl: int = setting(8, check=_int8_word_length)  # word length of weights and activations
    per_channel: bool = False  # one weight scale per output channel
    averaging: float = setting(0.01, check=up_to_one)  # moving-average constant of the observers
    RENAMED: ClassVar[dict[str, str]] = {"bits": "wl"}

    def __post_init__(self) -> None:
        check_settings(self)

    def qconfig(self) -> tq.QConfig:
        """The fake quantizers of activations and weights at this word length."""
        top = 2 ** (self.wl - 1) - 1
        activation = tq.FakeQuantize.with_args(
            observer=tq.MovingAverageMinMaxObserver,
            averaging_constant=self.averaging,
            quant_min=0,
            quant_max=2**self.wl - 1,
            dtype=torch.quint8,
            qscheme=torch.per_tensor_affine,
        )
        if self.per_channel:
            weight = tq.FakeQuantize.with_args(
                observer=tq.MovingAveragePerChannelMinMaxObserver,
                averaging_constant=self.averaging,
                quant_min=-top,
                quant_max=top,
                dtype=torch.qint8,
                qscheme=torch.per_channel_symmetric,
                ch_axis=0,
            )
        else:
            weight = tq.FakeQuantize.with_args(
                observer=tq.MovingAverageMinMaxObserver,
                averaging_constant=self.averaging,
                quant_min=-top,
                quant_max=top,
                dtype=torch.qint8,
                qscheme=torch.per_tensor_symmetric,
            )
        return tq.QConfig(activation=activation, weight=weight)


class AffineAdd(nn.Module):
    """The residual add through torch.ao's FloatFunctional, with the following ReLU fused
    in (``relu=True``) as torch.ao adds in one rescale."""

    def __init__(self, relu: bool) -> None:
        super().__init__()
        self.relu = relu
        self.op = nn.quantized.FloatFunctional()

    def forward(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return self.op.add_relu(branch, shortcut) if self.relu else self.op.add(branch, shortcut)


class AffineQAT(nn.Module):
    """A kit model under torch.ao affine QAT: the image quantized on the way in, the logits
    dequantized on the way out. ``arch`` and ``config`` rebuild it from a checkpoint."""

    def __init__(self, network: nn.Module, config: AffineConfig) -> None:
        super().__init__()
        self.config = config
        self.quantize_input = tq.QuantStub()
        self.network = network
        self.dequantize_output = tq.DeQuantStub()

    @property
    def arch(self) -> Arch:
        """The float architecture it was prepared from."""
        return arch_of(self.network)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequantize_output(self.network(self.quantize_input(x)))

    def train(self, mode: bool = True) -> AffineQAT:
        """Observers follow the data in training only: an evaluation leaves the formats be."""
        super().train(mode)
        self.apply(tq.enable_observer if mode else tq.disable_observer)
        return self


def _execution_order(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's leaf modules in the order a forward pass runs them (on a blank image of
    the architecture's input size)."""
    arch = arch_of(model)
    side = 224 if arch.stem == "imagenet" else 32
    names = {m: name for name, m in model.named_modules() if not list(m.children())}
    order: list[tuple[str, nn.Module]] = []
    with forward_hooks(names, lambda m, i, o: order.append((names[m], m))), torch.no_grad():
        model.eval()(torch.zeros(1, arch.in_channels, side, side, device=next(model.parameters()).device))
    return order


def _fuse_groups(order: list[tuple[str, nn.Module]]) -> list[list[str]]:
    """Conv → BatchNorm (→ ReLU) runs of the forward pass, as torch.ao fuses them."""
    groups, i = [], 0
    while i < len(order) - 1:
        (name, conv), (bn_name, bn) = order[i], order[i + 1]
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            group = [name, bn_name]
            if i + 2 < len(order) and type(order[i + 2][1]) is nn.ReLU:
                group.append(order[i + 2][0])
            groups.append(group)
            i += len(group)
        else:
            i += 1
    return groups


def _replace_adds(model: nn.Module, order: list[tuple[str, nn.Module]]) -> None:
    """Each float residual add becomes an AffineAdd; a ReLU run right after it moves into it."""
    for (name, module), (next_name, after) in zip(order, order[1:] + [("", nn.Identity())]):
        if isinstance(module, Add):
            relu = type(after) is nn.ReLU
            model.set_submodule(name, AffineAdd(relu))
            if relu:
                model.set_submodule(next_name, nn.Identity())


def prepare_affine_qat(float_model: nn.Module, config: AffineConfig) -> AffineQAT:
    """The fake-quant training model of a float kit model (which is left as it is): its
    weights, BatchNorm parameters and statistics, fused and observed."""
    arch_of(float_model)  # a kit model: an error for anything else
    if quant_of(float_model) is not None:
        raise ValueError("prepare_affine_qat takes a float model; this one is fixed point")
    network = copy.deepcopy(float_model)
    order = _execution_order(network)
    _replace_adds(network, order)
    tq.fuse_modules_qat(network.train(), _fuse_groups(order), inplace=True)
    model = AffineQAT(network, config)
    model.qconfig = config.qconfig()  # type: ignore[assignment]  # torch.ao reads it here
    tq.prepare_qat(model, inplace=True)
    return model.to(next(float_model.parameters()).device)


def affine_config_of(model: nn.Module) -> AffineConfig | None:
    """The AffineConfig of a torch.ao QAT model; None for any other model."""
    return model.config if isinstance(model, AffineQAT) else None


@contextlib.contextmanager
def _engine():
    """QNNPACK for the int8 model, the engine as it was afterwards. PyTorch warns on every
    quantized tensor it makes that eager-mode quantization will move out of it (to
    torchao): said once in docs/guide.md, not at each layer."""
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = ENGINE
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions")
            yield
    finally:
        torch.backends.quantized.engine = before


class Saturated(nn.Module):
    """A converted layer whose quantized output saturates to ``qmin..qmax`` of its own
    integers: torch.ao's int8 kernels write the full 0..255, where a word length below 8
    holds fewer levels."""

    def __init__(self, layer: nn.Module, qmin: int, qmax: int) -> None:
        super().__init__()
        self.layer, self.qmin, self.qmax = layer, qmin, qmax

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = self.layer(*inputs)
        ints = x.int_repr().clamp(self.qmin, self.qmax).contiguous()
        return torch._make_per_tensor_quantized_tensor(ints, x.q_scale(), x.q_zero_point())

    def extra_repr(self) -> str:
        return f"integers {self.qmin}..{self.qmax}"


def _clamp_weights(trained: nn.Module, converted: nn.Module) -> None:
    """Each converted layer's integer weights clamped to its fake quantizer's range, as the
    fake-quant model clamps them: torch.ao's conversion rounds to the full int8 range, so a
    folded weight past the observed range would keep a value training never used."""
    for name, module in trained.named_modules():
        fake = getattr(module, "weight_fake_quant", None)
        if not isinstance(fake, tq.FakeQuantize):
            continue
        layer: Any = converted.get_submodule(name)  # a quantized conv or linear
        weight = layer.weight()
        if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            scales = weight.q_per_channel_scales().to(torch.float64)
            bound = scales.reshape(-1, *[1] * (weight.dim() - 1))
            clamped = torch.max(
                torch.min(weight.dequantize().double(), fake.quant_max * bound), fake.quant_min * bound
            )
            weight = torch.quantize_per_channel(
                clamped.float(),
                weight.q_per_channel_scales(),
                weight.q_per_channel_zero_points(),
                weight.q_per_channel_axis(),
                torch.qint8,
            )
        else:
            scale = weight.q_scale()
            clamped = weight.dequantize().clamp(fake.quant_min * scale, fake.quant_max * scale)
            weight = torch.quantize_per_tensor(clamped, scale, weight.q_zero_point(), torch.qint8)
        layer.set_weight_bias(weight, layer.bias())


def _saturate_below_8_bits(trained: nn.Module, converted: nn.Module) -> None:
    """After each converted layer whose activations held fewer than 8 bits in training, the
    saturation to their range (the fake quantizer's quant_min..quant_max)."""
    for name, module in trained.named_modules():
        fake = getattr(module, "activation_post_process", None)
        if isinstance(fake, tq.FakeQuantize) and (fake.quant_min, fake.quant_max) != (0, 255):
            if isinstance(module, nn.quantized.FloatFunctional):  # called by its AffineAdd
                name = name.rsplit(".", 1)[0]
            converted.set_submodule(
                name, Saturated(converted.get_submodule(name), fake.quant_min, fake.quant_max)
            )


class Int8Network(nn.Module):
    """torch.ao's converted int8 model, run by the QNNPACK engine on the CPU; float32
    images in, float32 logits out."""

    def __init__(self, converted: nn.Module) -> None:
        super().__init__()
        self.converted = converted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _engine():
            return self.converted(x.float().cpu().contiguous())


def convert_to_int8(model: AffineQAT) -> Int8Network:
    """The int8 model of a trained AffineQAT model (which is left as it is): integer
    weights (in the fake quantizers' ranges), int32 biases, each layer's rescale
    ``s_x · s_w / s_y`` and, below 8 bits, the saturation to the word length's range."""
    if not isinstance(model, AffineQAT):
        raise TypeError(f"convert_to_int8 takes an AffineQAT model, got {type(model).__name__}")
    trained = copy.deepcopy(model).cpu().float().eval()
    with _engine():
        converted = tq.convert(trained, inplace=False)
        _clamp_weights(trained, converted)
    _saturate_below_8_bits(trained, converted)
    return Int8Network(converted.eval())
