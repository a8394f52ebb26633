"""Capturable: no graph breaks in any model's forward, and compiled training steps that
give the eager weights."""

import pytest
import torch
import torch._dynamo
from torch import nn

from f8lab.models import build_model, list_models
from f8lab.quant import QuantConfig

CONFIGS = {
    "float": None,
    "fixed, batch fold": QuantConfig(),
    "fixed, running fold": QuantConfig(bn_fold="running"),
    "fixed, grid per channel": QuantConfig(fraclen_method="grid", per_channel=True),
    "fixed, 8-bit residual": QuantConfig(residual="int8"),
}
# Tracing takes tens of seconds a model on 2 cores: the default run traces one of each
# kind (every option on ResNet-18, every architecture in the default fixed point, the
# ImageNet stem once); `make test-slow` traces the whole matrix.
REPRESENTATIVES = (
    {("resnet18", "small", config) for config in CONFIGS}
    | {(name, "small", "fixed, batch fold") for name in list_models()}
    | {("resnet18", "imagenet", "fixed, batch fold")}
)
CASES = [
    pytest.param(
        name, stem, config, marks=[] if (name, stem, config) in REPRESENTATIVES else [pytest.mark.slow]
    )
    for config in CONFIGS
    for name in list_models()
    for stem in ("small", "imagenet")
]


@pytest.mark.parametrize("name,stem,config", CASES)
def test_forward_has_no_graph_breaks(name, stem, config):
    torch._dynamo.reset()
    model = build_model(name, 10, quant=CONFIGS[config], stem=stem, in_channels=1, width=0.25)
    x = torch.rand(2, 1, 28, 28) if stem == "small" else torch.rand(2, 1, 64, 64)
    for training in (True, False):
        model.train(training)
        explanation = torch._dynamo.explain(model)(x)
        reasons = [str(b.reason).splitlines()[0] for b in explanation.break_reasons]
        assert explanation.graph_break_count == 0, (training, reasons)
        assert explanation.graph_count == 1


def _steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, count: int) -> list[float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    losses = []
    for _ in range(count):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("bn_fold", ["batch", pytest.param("running", marks=pytest.mark.slow)])
def test_compiled_steps_give_the_eager_weights(bn_fold):
    """The whole fixed-point graph (formats, EMA, folds, scales, clamps) without the
    rounding, in float64, so that no last-bit difference of a fused kernel flips a
    rounding tie or a format threshold: three compiled steps give the eager weights and
    formats within float tolerance."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    config = QuantConfig(bn_fold=bn_fold, floating=True)
    eager = (
        build_model("resnet18", 10, quant=config, stem="small", in_channels=1, width=0.125).double().train()
    )
    compiled_model = (
        build_model("resnet18", 10, quant=config, stem="small", in_channels=1, width=0.125).double().train()
    )
    compiled_model.load_state_dict(eager.state_dict())
    x, y = torch.rand(16, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (16,))
    eager_losses = _steps(eager, x, y, 3)
    compiled_losses = _steps(torch.compile(compiled_model, fullgraph=True), x, y, 3)
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-9)
    for (key, a), b in zip(eager.state_dict().items(), compiled_model.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12, msg=key)
        else:
            assert torch.equal(a, b), key


def test_compiled_gradients_reach_every_layer_through_the_rounding():
    """With rounding (float64, so that a fused kernel's last bits rarely flip a rounding
    tie), a compiled step's gradients equal the eager ones within 5%; none may vanish, as
    they did where a compiled graph dropped the straight-through mask."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    eager = (
        build_model("resnet18", 10, quant=QuantConfig(), stem="small", in_channels=1, width=0.125)
        .double()
        .train()
    )
    compiled_model = (
        build_model("resnet18", 10, quant=QuantConfig(), stem="small", in_channels=1, width=0.125)
        .double()
        .train()
    )
    compiled_model.load_state_dict(eager.state_dict())
    x, y = torch.rand(32, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (32,))
    for net in (eager, torch.compile(compiled_model)):
        nn.functional.cross_entropy(net(x), y).backward()
    for (name, a), b in zip(eager.named_parameters(), compiled_model.parameters()):
        assert b.grad is not None and a.grad is not None, name
        assert (b.grad - a.grad).norm() <= 0.05 * a.grad.norm() + 1e-12, name
