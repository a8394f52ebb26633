"""integerize(model): the integer-only network that a trained fixed-point model stands for.

Every layer of the fixed-point model is replaced by its integer step (docs/method.md §6): the
image quantizer by ``IntInput``, each activation quantizer by ``IntRequantize``, each
conv+BN by ``IntConv2d`` (int8 weights, int32 bias at FL_x + FL_w), the residual add by
``IntAdd``, max pooling by ``IntMaxPool2d`` and the classifier by ``IntLinear``; in F8Net's
layout (f8lab.models.f8net_layout) also its add of two accumulators by ``IntAccumulatorAdd``,
the ReLUs of its int32 residual path by ``IntReLU`` and its pooled classifier by
``IntPooledRequantize`` + ``IntLinear``. The architecture's
own forward drives the result, so every model built from these layers integerizes.
The integer logits, divided by ``2**output_fraclen``, equal the fake-quant model's
evaluation logits bit for bit wherever the fake-quant model's float sums are exact: always
for a model in float64 (``model.double()``, then integerize it), below 2**24 in float32.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from f8lab.export.integer_ops import (
    INT32_MAX,
    IntAccumulatorAdd,
    IntAdd,
    IntConv2d,
    IntInput,
    IntLinear,
    IntMaxPool2d,
    IntPooledRequantize,
    IntReLU,
    IntRequantize,
)
from f8lab.models.f8net_layout import SHIFT_POOL_BITS, F8NetClassifier
from f8lab.models.hooks import forward_hooks
from f8lab.models.network import Network
from f8lab.models.registry import quant_of
from f8lab.nn import ActQuant, Add, FixAdd, FixConv2d, FixLinear, FoldedBatchNorm2d, WeightQuant
from f8lab.quant import FraclenEMA

KNOWN = (
    ActQuant,
    FixAdd,
    Add,  # F8Net's layout: the unrescaled add of two accumulators
    nn.ReLU,  # F8Net's layout: the ReLU of its int32 residual path
    FixConv2d,
    FixLinear,
    F8NetClassifier,
    FoldedBatchNorm2d,
    nn.MaxPool2d,
    nn.Identity,
    FraclenEMA,
    WeightQuant,
)


class IntegerModel(nn.Module):
    """An integer-only model: ``forward(x)`` takes the usual input and returns integer logits
    (int32 values; ``logits = out / 2**output_fraclen``)."""

    def __init__(self, body: nn.Module, output_fraclen: int) -> None:
        super().__init__()
        self.body, self.output_fraclen = body, output_fraclen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out.values.to(torch.int32 if not out.values.is_floating_point() else out.values.dtype)


def _check(model: nn.Module) -> None:
    quant = quant_of(model)
    if quant is None:
        raise ValueError(
            "integerize takes a fixed-point model (build_model(..., quant=QuantConfig()), "
            "or a model built from LayerKit(QuantConfig()))"
        )
    if model.training:
        raise ValueError("integerize needs the model in evaluation mode: call model.eval() first")
    if quant.floating:
        raise ValueError("a floating-mode model has no integer form: it does not round")
    for name, module in model.named_modules():
        if name and not isinstance(module, KNOWN) and not _routes_only(module):
            raise ValueError(
                f"integerize does not know layer {name} ({type(module).__name__}): "
                "build the model from a fixed-point LayerKit's layers"
            )
        if isinstance(module, ActQuant) and module.tracked and module.ema.updates.item() == 0:
            raise ValueError(
                f"{name} was never calibrated (its FL buffer is untouched): train "
                "the model or run training-mode batches through it first"
            )
        if isinstance(module, FixAdd) and module.identity_quant is not None:
            a, b = module.identity_quant, module.output_quant
            if a.clipping and a.master is not b.master:
                raise ValueError(
                    f"{name}: the identity path's scales are not a power of two "
                    "apart (clipping levels not shared): no exact integer form"
                )


def _routes_only(module: nn.Module) -> bool:
    """Blocks, containers and the model itself: modules with children and no parameters or
    buffers of their own, whose forward routes tensors between the kit's layers."""
    own = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    return bool(list(module.children())) and not own


def _evaluation_pass(model: nn.Module, example: torch.Tensor) -> tuple[dict[FixLinear, int], set[ActQuant]]:
    """One evaluation pass (it sets every quantizer's pass scale), recording each
    classifier's pooling size and the quantizers that read the model's input itself."""
    sizes: dict[FixLinear, int] = {}
    images: set[ActQuant] = set()

    def record(module, inputs, output):
        if isinstance(module, FixLinear):
            sizes[module] = inputs[0].shape[2] * inputs[0].shape[3]
        elif inputs[0] is example:
            images.add(module)

    watched = [m for m in model.modules() if isinstance(m, (FixLinear, ActQuant))]
    with forward_hooks(watched, record), torch.no_grad():
        model(example)
    return sizes, images


def _integer_values(x: torch.Tensor, fraclen: torch.Tensor, what: str) -> torch.Tensor:
    """``x * 2**fraclen`` as integers, refusing values an int32 cannot hold."""
    scaled = torch.round(x.double() * torch.exp2(fraclen.double()))
    if scaled.abs().max() > INT32_MAX:
        raise ValueError(f"{what} does not fit in int32 at FL {fraclen.tolist()}")
    return scaled.long()


def _conv_step(conv: FixConv2d) -> IntConv2d:
    with torch.no_grad():
        weight, bias = conv.folded(None)
        weight_q = conv.weight_quant(weight)
    fl_w = conv.weight_quant.fraclen.clone()
    fl_in = int(conv.input_quant.running_fraclen())
    shape = (-1, 1, 1, 1) if fl_w.dim() else ()
    q_w = _integer_values(weight_q, fl_w.view(shape), "a weight")
    q_b = _integer_values(bias, fl_in + fl_w, "a bias")
    return IntConv2d(q_w, q_b, fl_w, fl_in, conv.stride[0], int(conv.padding[0]), conv.groups)


def _linear_step(linear: FixLinear, pool_size: int) -> IntLinear:
    with torch.no_grad():
        weight, bias = linear.folded(pool_size)
        weight_q = linear.weight_quant(weight)
    fl_w = linear.weight_quant.fraclen.clone()
    fl_in = int(linear.input_quant.running_fraclen())
    q_w = _integer_values(weight_q, fl_w.view(-1, 1) if fl_w.dim() else fl_w, "a weight")
    q_b = _integer_values(bias, fl_in + fl_w, "a bias")
    return IntLinear(q_w, q_b, fl_w, fl_in, pool_size)


def _aligned_fraclen(quantizer: ActQuant | None, add: FixAdd) -> int | None:
    """The FL at which ``quantizer``'s integers count in the sum's units: its own FL minus the
    exponent of the scale ratio ``s / s_out`` that the fake-quant addition applies."""
    if quantizer is None:
        return None
    exponent = torch.log2(quantizer.running_scale() / add.output_quant.running_scale()).item()
    if exponent != round(exponent):  # _check refuses unshared levels; this guards the rest
        raise ValueError(f"a residual term's scale ratio 2**{exponent} is not a power of two")
    return int(quantizer.running_fraclen()) - round(exponent)


def _pooled_classifier_step(classifier: F8NetClassifier) -> nn.Sequential:
    """F8Net's classifier: the pooled map requantized to its input format, then the product."""
    with torch.no_grad():
        weight_q, bias = classifier.folded()
    fl_w = classifier.weight_quant.fraclen.clone()
    quant = classifier.quant
    fl_in = int(quant.running_fraclen())
    q_w = _integer_values(weight_q, fl_w, "a weight")
    q_b = _integer_values(bias, fl_in + fl_w, "a bias")
    pool = IntPooledRequantize(quant.wl, fl_in, classifier.pool, SHIFT_POOL_BITS)
    return nn.Sequential(pool, IntLinear(q_w, q_b, fl_w, fl_in, pool_size=1))


def _requantize_step(quantizer: ActQuant) -> IntRequantize:
    cap = quantizer.max_value if not quantizer.clipping else None
    return IntRequantize(quantizer.wl, int(quantizer.running_fraclen()), quantizer.signed, cap)


def _add_step(add: FixAdd) -> IntAdd:
    """The integer add; with residual="int8", its terms' requantizations too."""
    branch, projection = add.branch_quant, add.shortcut_quant
    shortcut = add.identity_quant if add.identity_quant is not None else projection
    return IntAdd(
        _aligned_fraclen(shortcut, add),
        _aligned_fraclen(branch, add),
        branch=None if branch is None else _requantize_step(branch),
        shortcut=None if projection is None else _requantize_step(projection),
    )


def integerize(
    model: nn.Module, example_input: torch.Tensor | None = None, carrier: torch.dtype = torch.int64
) -> IntegerModel:
    """Build the integer-only model of a calibrated fixed-point model in eval mode.

    Args:
        model: a fixed-point model (``build_model(..., quant=...)``), trained or calibrated,
            in eval mode.
        example_input: an input of the size the model will see (it fixes the classifier's
            pooling size); default for f8lab's architectures: one image of the stem's usual
            size (28x28 for the small stem, 224x224 for the ImageNet one). Required for
            any other model.
        carrier: int64 (pure integer arithmetic) or float64 (the same integers in floats;
            fast where float convolutions are).

    Returns:
        An IntegerModel.
    """
    _check(model)
    if example_input is None:
        if not isinstance(model, Network):
            raise ValueError(
                f"integerize needs example_input for a {type(model).__name__}: an "
                "input of the size the model will see"
            )
        size = model.arch.image_size
        example_input = torch.zeros(1, model.arch.in_channels, size, size)
    reference = next(model.parameters())
    example_input = example_input.to(reference.device, reference.dtype)
    body = copy.deepcopy(model)
    pool_sizes, images = _evaluation_pass(body, example_input)
    replacements: dict[str, nn.Module] = {}
    # quantizers that are part of another layer's step: the 8-bit add's, F8Net's classifier's
    in_steps = {id(q) for m in body.modules() if isinstance(m, FixAdd) for q in m.children()}
    in_steps |= {id(m.quant) for m in body.modules() if isinstance(m, F8NetClassifier)}
    for name, module in body.named_modules():
        if isinstance(module, ActQuant) and id(module) in in_steps:
            continue
        if isinstance(module, ActQuant):
            if module in images:
                replacements[name] = IntInput(
                    module.wl, int(module.running_fraclen()), module.signed, carrier
                )
            else:
                replacements[name] = _requantize_step(module)
        elif isinstance(module, FixConv2d):
            replacements[name] = _conv_step(module)
        elif isinstance(module, FixLinear):
            replacements[name] = _linear_step(module, pool_sizes[module])
        elif isinstance(module, FixAdd):
            replacements[name] = _add_step(module)
        elif isinstance(module, F8NetClassifier):
            replacements[name] = _pooled_classifier_step(module)
        elif isinstance(module, Add):
            replacements[name] = IntAccumulatorAdd()
        elif isinstance(module, nn.ReLU):
            replacements[name] = IntReLU()
        elif isinstance(module, nn.MaxPool2d):
            replacements[name] = IntMaxPool2d(module)
        elif isinstance(module, FoldedBatchNorm2d):
            replacements[name] = nn.Identity()
    for name, step in replacements.items():
        parent, _, attribute = name.rpartition(".")
        setattr(body.get_submodule(parent) if parent else body, attribute, step)
    classifier = next(m for m in body.modules() if isinstance(m, IntLinear))
    return IntegerModel(body, classifier.output_fraclen).eval()
