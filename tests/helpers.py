"""Shared test helpers: small calibrated models, inputs, the bit-exactness check, the tiny
run config and image files (``pythonpath = ["tests"]`` in pyproject.toml makes this
importable)."""

from pathlib import Path

import torch
from PIL import Image
from torch import nn

from f8lab.export import integerize
from f8lab.models import build_model, from_float
from f8lab.nn import FixAdd
from f8lab.quant import QuantConfig

SHAPES = {"imagenet": (2, 3, 224, 224), "small": (4, 1, 28, 28)}
WIDTHS = {"resnet18": 0.25, "resnet50": 0.125, "mobilenet_v1": 0.25, "mobilenet_v2": 0.5}
# a tiny float run on synthetic data: the CLI's, the trainer's and the bad-input tests' base
TINY_MODEL = "model: {name: resnet18, stem: small, width: 0.125, num_classes: 10, in_channels: 1}\n"
TINY_CONFIG = (
    TINY_MODEL
    + """data: {dataset: synthetic, batch_size: 16, train_limit: 64, test_limit: 32}
optim: {lr: 0.1, epochs: 1}
"""
)


def calibrated(name: str, stem: str, quant: QuantConfig | None = None) -> nn.Module:
    quant = quant or QuantConfig()
    torch.manual_seed(0)
    shape = SHAPES[stem]
    float_model = build_model(name, 10, stem=stem, in_channels=shape[1], width=WIDTHS[name])
    float_model.train()
    with torch.no_grad():
        float_model(torch.rand(shape))
    model = from_float(float_model, quant)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(shape))
    return model.eval()


def trained_like(name: str, quant: QuantConfig, steps: int = 20) -> nn.Module:
    """A calibrated model after a few SGD steps on a learnable task: clipping levels,
    formats and statistics move as in training, so that activations saturate at their
    format's limit (a fresh model's rarely do)."""
    return learn_a_task(calibrated(name, "small", quant), steps)


def learn_a_task(model: nn.Module, steps: int, shape=SHAPES["small"]) -> nn.Module:
    """``model`` after ``steps`` SGD steps on a learnable task (the class is a function of
    the image's mean), in eval mode."""
    model.train()
    generator = torch.Generator().manual_seed(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(steps):
        x = torch.randint(0, 256, shape, generator=generator).float() / 256
        y = (x.mean((1, 2, 3)) * 40).long() % 10
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def pixels(shape) -> torch.Tensor:
    return torch.randint(0, 256, shape).float() / 256


def assert_bit_exact(model: nn.Module, x: torch.Tensor, carrier=torch.int64) -> None:
    """The fake-quant model in float64 (its sums never round) against its integer model."""
    model = model.double()
    integer = integerize(model, carrier=carrier)
    with torch.no_grad():
        expected = model(x.double())
    assert torch.equal(integer(x).double() / 2**integer.output_fraclen, expected)


def shifted_block_outputs(model: nn.Module, by: int = 1) -> nn.Module:
    """Move every residual sum's FL away from its identity input's, as training does: the
    identity path's scale ratio becomes 2**by instead of 1."""
    for module in model.modules():
        if isinstance(module, FixAdd) and module.identity_quant is not None:
            ema = module.output_quant.ema
            ema.fraclen.fill_(int(module.identity_quant.running_fraclen()) - by)
    return model


def write_image(path: Path, colour: tuple[int, int, int] | None = None) -> None:
    """A small JPEG at ``path`` for ImageNet-shaped folders; default colour: from the name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour or (len(path.name) * 7 % 256, 0, 0)).save(path, "JPEG")
