"""Both BN folds: the batch statistics and their gradient, the same evaluation layer for
both, gradients everywhere with the one-convolution fold (its match with BatchNorm is in
test_layers.py)."""

import torch

from f8lab.models import build_model, from_float
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
    model = build_model(
        "mobilenet_v2", 10, quant=QuantConfig(bn_fold="running"), stem="small", in_channels=1, width=0.25
    ).train()
    model(torch.rand(8, 1, 28, 28)).logsumexp(1).sum().backward()
    conv = model.features[2].conv[0][0]
    assert conv.weight.grad.abs().sum() > 0
    bn = model.features[2].conv[0][1]
    assert bn.weight.grad.abs().sum() > 0 and bn.bias.grad.abs().sum() > 0
    assert bn.num_batches_tracked.item() == 1
