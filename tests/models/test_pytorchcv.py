"""PytorchCV's float models (the starting points of F8Net's tiny fine-tuning) as f8lab's.

PytorchCV builds its models offline with ``pretrained=False``; given random weights and
BatchNorm statistics, f8lab's model with the mapped state dict computes the same feature
map bit for bit in float64. The logits then differ only by the pooling's summation order
(PytorchCV's AvgPool2d(7), f8lab's adaptive pool; and MobileNet V2's 1x1-conv classifier
against a linear layer): within 1e-12.
"""

import pytest
import torch
from pytorchcv.model_provider import get_model
from torch import nn

from f8lab.models import build_model, from_float, load_float_state_dict
from f8lab.models.pytorchcv import ARCHITECTURES, from_pytorchcv
from f8lab.quant import QuantConfig
from f8lab.train.trainer import float_weights


def random_pytorchcv(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = get_model(name, pretrained=False).double().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5), module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.5, 0.5), module.running_var.uniform_(0.5, 2.0)
    return model


def last_feature_map(
    model: nn.Module, module: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model(x)`` and the output of ``module`` in that pass."""
    seen = {}
    handle = module.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        handle.remove()
    return logits, seen["out"]


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_pytorchcv_weights_give_the_same_network(name):
    ptcv = random_pytorchcv(name)
    ours = build_model(ARCHITECTURES[name]).double().eval()
    load_float_state_dict(ours, from_pytorchcv(name, ptcv.state_dict()))  # every key, every shape
    x = torch.rand(1, 3, 224, 224, dtype=torch.float64)
    before_pool = list(ptcv.features.children())[-2]  # PytorchCV's features end with the pool
    expected, expected_map = last_feature_map(ptcv, before_pool, x)
    logits, feature_map = last_feature_map(
        ours, ours.layer4 if name.startswith("resnet") else ours.features, x
    )
    assert torch.equal(feature_map, expected_map)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-12)


def test_a_state_dict_of_another_model_is_refused_by_key():
    state = get_model("mobilenet_w1", pretrained=False).state_dict()
    with pytest.raises(
        ValueError, match=r"features.init_block.conv.weight is not a layer of PytorchCV.s resnet18"
    ):
        from_pytorchcv("resnet18", state)
    with pytest.raises(ValueError, match="unknown PytorchCV model 'vgg16'; f8lab maps resnet18, resnet50b"):
        from_pytorchcv("vgg16", state)


def test_a_run_can_start_from_ptcv_weights(monkeypatch):
    """``--init ptcv:resnet18`` (PytorchCV downloads the weights; here its offline model)."""
    import pytorchcv.model_provider

    ptcv = random_pytorchcv("resnet18").float()
    monkeypatch.setattr(pytorchcv.model_provider, "get_model", lambda name, pretrained: ptcv)
    float_model = build_model("resnet18")
    load_float_state_dict(float_model, float_weights("ptcv:resnet18"))
    model = from_float(float_model, QuantConfig())
    assert torch.equal(
        model.layer2[0].downsample[0].weight, ptcv.features.stage2.unit1.identity_conv.conv.weight
    )
