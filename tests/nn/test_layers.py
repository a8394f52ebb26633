"""Fixed-point layers: PACT equivalence, BN folding, modes, sharing, bad input."""

import pytest
import torch
from torch import nn

from f8lab.nn import ActQuant, FixConv2d, LayerKit
from f8lab.quant import QuantConfig, fraclen_range


def pact(x: torch.Tensor, alpha: float, levels: int, signed: bool) -> torch.Tensor:
    """PACT: clip at α (and -α when signed), quantize uniformly with step α / levels."""
    step = alpha / levels
    return torch.clamp(torch.round(x / step), -levels if signed else 0, levels) * step


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("bits", [8, 4])
def test_fix_scaling_is_pact_for_every_fraclen(signed, bits):
    torch.manual_seed(0)
    x = torch.randn(10_000, dtype=torch.float64) * 5
    quantizer = ActQuant(QuantConfig(wl=bits), signed=signed).double().eval()
    low, high = fraclen_range(bits, signed)
    checked = []
    for fl in range(low, high + 1):
        for alpha in (0.37, 3.0, 8.0):
            quantizer.ema.fraclen.fill_(fl)
            quantizer.alpha.data.fill_(alpha)
            s = quantizer.running_scale()
            assert torch.equal(s * quantizer(x / s), pact(x, alpha, quantizer.levels(), signed))
        checked.append(int(quantizer.running_fraclen()))
    assert checked == list(range(low, high + 1))  # every FL of the range, FL_max included


@pytest.mark.parametrize("method", ["std", "grid"])
def test_with_clipping_a_batch_picks_its_fraclen_relative_to_the_running_one(method):
    """Why grid search and PACT clipping do not mix (docs/method.md §4): the tensor a
    quantizer sees is ``x / s`` with ``s = 2**FL * α / levels``, so the batch's own FL is
    the running FL plus an offset that depends on ``x / α`` alone. When that offset is not
    0, every step repeats it: the running FL walks to the end of its range."""
    torch.manual_seed(0)
    x = torch.randn(50_000, dtype=torch.float64).relu()
    x[:20] = 13.0  # a few values beyond α = 8: grid search clips them at 2α
    offsets = set()
    for running in (3, 4, 5, 6):
        quantizer = ActQuant(QuantConfig(fraclen_method=method), signed=False).double().train()
        quantizer.ema.fraclen.fill_(running)
        quantizer(x / quantizer.running_scale())
        offsets.add(int(quantizer.batch_fraclen) - running)
    # grid search clips at 2α to spare the few large values (a walk down); the formula,
    # blind to them, clips at α / 2 (a walk up)
    assert offsets == ({-1} if method == "grid" else {1})


def test_unsigned_quantizer_is_relu_and_floating_modes():
    x = torch.linspace(-3, 3, 101)
    exact = ActQuant(QuantConfig(floating=True, clipping=False)).eval()
    assert torch.equal(exact(x), torch.relu(x))
    relu6 = ActQuant(QuantConfig(floating=True, clipping=False), max_value=6).eval()
    assert torch.equal(relu6(x * 3), torch.nn.functional.relu6(x * 3))
    clipped = ActQuant(QuantConfig(floating=True, alpha_init=1.0)).eval()  # FL 6: range 0..255/64
    assert torch.equal(clipped(x), x.clamp(0, 255 / 64))


def conv_reading_an_image(config: QuantConfig, groups: int = 1) -> tuple[FixConv2d, nn.BatchNorm2d]:
    kit = LayerKit(config)
    bn = kit.norm(4)
    # input scale 1 (the image's fixed format), output: the logits' units
    conv = kit.conv(4, 4, 3, groups=groups, norm=bn, reads=kit.image_input(), writes=None)
    return conv, bn


@pytest.mark.parametrize("bn_fold", ["batch", "running"])
@pytest.mark.parametrize("groups", [1, 4])
def test_training_folds_batch_statistics_like_batchnorm(groups, bn_fold):
    """Without rounding, both folds are batch normalisation exactly: the running fold's
    ``z·σ_run/σ_B + (β - γμ_B/σ_B)`` too."""
    torch.manual_seed(0)
    conv, bn = conv_reading_an_image(QuantConfig(floating=True, clipping=False, bn_fold=bn_fold), groups)
    reference_conv = nn.Conv2d(4, 4, 3, padding=1, groups=groups, bias=False)
    reference_bn = nn.BatchNorm2d(4)
    reference_conv.weight.data.copy_(conv.weight.data)
    for p in (bn.weight, bn.bias):
        p.data.uniform_(0.5, 1.5)
    bn.running_var.uniform_(0.5, 2.0)
    reference_bn.load_state_dict(bn.state_dict())
    x = torch.randn(8, 4, 6, 6)
    torch.testing.assert_close(conv(x), reference_bn(reference_conv(x)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, reference_bn.running_mean)
    torch.testing.assert_close(bn.running_var, reference_bn.running_var)
    conv.eval(), reference_bn.eval()
    torch.testing.assert_close(conv(x), reference_bn(reference_conv(x)), rtol=1e-5, atol=1e-5)


def test_gradients_reach_weights_bn_and_alpha():
    from f8lab.models import build_model

    model = build_model("resnet18", 10, quant=QuantConfig(), stem="small", in_channels=1, width=0.125)
    model.train()
    model(torch.rand(4, 1, 28, 28)).sum().backward()
    assert model.layer2[0].conv1.weight.grad.abs().sum() > 0
    assert model.layer2[0].bn1.weight.grad.abs().sum() > 0
    assert model.act1.alpha.grad is not None and model.act1.alpha.grad != 0


def test_grouped_convolutions_other_than_depthwise_are_refused():
    quant = ActQuant(QuantConfig())
    with pytest.raises(NotImplementedError, match="groups=2 .* only dense .* and depthwise"):
        FixConv2d(
            4,
            4,
            3,
            groups=2,
            config=QuantConfig(),
            bn=nn.BatchNorm2d(4),
            input_quant=quant,
            output_quant=None,
        )


def test_a_fixed_point_layer_refuses_float_connections():
    kit = LayerKit(QuantConfig())
    with pytest.raises(TypeError, match="takes a ActQuant here, got ReLU: build it with the same"):
        kit.conv(4, 4, 3, norm=kit.norm(4), reads=nn.ReLU(), writes=None)
    with pytest.raises(TypeError, match="folds a BatchNorm2d, got Identity"):
        FixConv2d(4, 4, 3, config=QuantConfig(), bn=nn.Identity(), input_quant=kit.act(), output_quant=None)


def test_sharing_needs_the_same_word_length():
    six = ActQuant(QuantConfig(wl=6))
    with pytest.raises(ValueError, match="share their word length"):
        ActQuant(QuantConfig(), signed=True, tied_to=six)


@pytest.mark.parametrize("bits", [4, 8])
def test_a_signed_follower_of_an_unsigned_master_keeps_power_of_two_scales(bits):
    """Scales divide by the master's levels: tied tensors of either signedness stay a
    power of two apart, and the follower clips at α times the ratio of the levels."""
    unsigned = ActQuant(QuantConfig(wl=bits))
    signed = ActQuant(QuantConfig(wl=bits), signed=True, tied_to=unsigned)
    unsigned.alpha.data.fill_(3.7)
    for fl_in, fl_out in ((3, 3), (3, 1), (0, 3)):  # valid at 4 bits too
        unsigned.ema.fraclen.fill_(fl_in)
        signed.ema.fraclen.fill_(fl_out)
        ratio = unsigned.running_scale() / signed.running_scale()
        assert ratio.item() == 2.0 ** (fl_in - fl_out)
    levels_signed, levels_unsigned = 2 ** (bits - 1) - 1, 2**bits - 1
    assert signed.clip_level().item() == pytest.approx(3.7 * levels_signed / levels_unsigned)
    assert unsigned.clip_level().item() == pytest.approx(3.7)
