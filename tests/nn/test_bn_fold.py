"""Both BN folds in training: the batch statistics' gradient, the one-convolution fold
against BatchNorm, and the same evaluation layer for both."""

import pytest
import torch
from torch import nn

from f8lab.models import build_model, from_float
from f8lab.nn import LayerKit
from f8lab.nn.conv import batch_statistics
from f8lab.quant import QuantConfig


def test_batch_statistics_and_their_gradient_match_var_mean():
    torch.manual_seed(0)
    y = torch.randn(4, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    mean, var = batch_statistics(y)
    ref_var, ref_mean = torch.var_mean(y, dim=(0, 2, 3), correction=0)
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(var, ref_var)
    torch.autograd.gradcheck(lambda t: batch_statistics(t)[1] * 3 + batch_statistics(t)[0], (y,))
    torch.autograd.gradcheck(lambda t: batch_statistics(t)[0], (y,))


def wired_conv(config: QuantConfig, groups: int = 1):
    kit = LayerKit(config)
    conv, bn = kit.conv(4, 4, 3, groups=groups), kit.norm(4)
    conv.attach(bn, kit.image_input(), None)
    return conv, bn


@pytest.mark.parametrize("groups", [1, 4])
def test_running_fold_trains_like_batchnorm(groups):
    """Without rounding, ``z·σ_run/σ_B + (β - γμ_B/σ_B)`` is batch normalisation exactly."""
    torch.manual_seed(0)
    conv, bn = wired_conv(QuantConfig(floating=True, clipping=False, bn_fold="running"), groups)
    reference_conv = nn.Conv2d(4, 4, 3, padding=1, groups=groups, bias=False)
    reference_conv.weight.data.copy_(conv.weight.data)
    reference_bn = nn.BatchNorm2d(4)
    for p in (bn.weight, bn.bias):
        p.data.uniform_(0.5, 1.5)
    bn.running_var.uniform_(0.5, 2.0)
    reference_bn.load_state_dict(bn.state_dict())
    x = torch.randn(8, 4, 6, 6)
    torch.testing.assert_close(conv(x), reference_bn(reference_conv(x)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, reference_bn.running_mean)
    torch.testing.assert_close(bn.running_var, reference_bn.running_var)


def test_the_two_folds_are_one_layer_in_evaluation():
    torch.manual_seed(0)
    float_model = build_model("resnet18", 10, stem="small", in_channels=1, width=0.125)
    batch = from_float(float_model, QuantConfig())
    running = from_float(float_model, QuantConfig(bn_fold="running"))
    x = torch.rand(16, 1, 28, 28)
    batch.train()(x)
    running.load_state_dict(batch.state_dict())
    batch.eval(), running.eval()
    assert torch.equal(batch(x), running(x))


def test_running_fold_trains_to_a_finite_model_with_gradients_everywhere():
    torch.manual_seed(0)
    model = build_model("mobilenet_v2", 10, quant=QuantConfig(bn_fold="running"), stem="small",
                        in_channels=1, width=0.25).train()
    model(torch.rand(8, 1, 28, 28)).logsumexp(1).sum().backward()
    conv = model.features[2].conv[0][0]
    assert conv.weight.grad.abs().sum() > 0
    bn = model.features[2].conv[0][1]
    assert bn.weight.grad.abs().sum() > 0 and bn.bias.grad.abs().sum() > 0
    assert bn.num_batches_tracked.item() == 1
