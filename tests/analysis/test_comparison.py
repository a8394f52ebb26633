"""What a quantized model keeps of its weights, read the same way for F8Net's fixed-point
models and torch.ao's affine ones; what an integer model stores."""

import pytest
import torch

from f8lab.analysis import integer_model_bytes, weight_zero_shares
from f8lab.baselines import AffineConfig, prepare_affine_qat
from f8lab.models import build_model
from f8lab.quant import QuantConfig
from helpers import calibrated, pixels


def _zero_first_channel_of(layer: torch.nn.Conv2d) -> None:
    with torch.no_grad():
        layer.weight[0].zero_()


def test_fixed_point_model():
    model = calibrated("resnet18", "small", QuantConfig(wl=4))
    _zero_first_channel_of(model.layer1[0].conv2)
    shares = weight_zero_shares(model, pixels((4, 1, 28, 28))).set_index("layer")
    assert list(shares.index[:2]) == ["conv1", "layer1.0.conv1"] and shares.index[-1] == "fc"
    assert len(shares) == 21  # 20 convolutions and the classifier
    channels = model.layer1[0].conv2.out_channels
    assert shares.dead_channels["layer1.0.conv2"] >= 1 / channels
    assert shares.zero_share["layer1.0.conv2"] >= 1 / channels
    assert ((shares.zero_share >= 0) & (shares.zero_share <= 1)).all()
    fl = model.layer1[0].conv1.weight_quant.fraclen
    assert shares.step["layer1.0.conv1"] == pytest.approx(float(torch.exp2(-fl.double()).mean()))
    assert set(shares.step) <= {2.0**-fl for fl in range(4)}  # signed 4-bit: FL 0..3


def test_affine_model_and_its_mode():
    torch.manual_seed(0)
    model = prepare_affine_qat(
        build_model("resnet18", 10, stem="small", in_channels=1, width=0.25), AffineConfig(wl=4)
    )
    model(pixels((4, 1, 28, 28)))  # training mode: the observers see the data
    _zero_first_channel_of(model.network.layer1[0].conv2)
    shares = weight_zero_shares(model, pixels((4, 1, 28, 28))).set_index("layer")
    assert model.training, "the model's mode is restored"
    assert len(shares) == 21 and shares.dead_channels["layer1.0.conv2"] > 0
    scale = model.network.layer1[0].conv1.weight_fake_quant.scale
    assert shares.step["layer1.0.conv1"] == pytest.approx(float(scale))


def test_a_float_model_is_refused():
    with pytest.raises(ValueError, match="quantizes no weights"):
        weight_zero_shares(
            build_model("resnet18", 10, stem="small", in_channels=1, width=0.25), pixels((1, 1, 28, 28))
        )


def test_integer_model_bytes_pack_weights_at_the_word_length():
    model = build_model("resnet18", 10, stem="small", in_channels=1, width=0.25)
    eight, four = integer_model_bytes(model, 8), integer_model_bytes(model, 4)
    assert eight["weights"] == 698_768 and eight["weight_bytes"] == 698_768
    assert four["weight_bytes"] == 698_768 // 2 and four["bias_bytes"] == eight["bias_bytes"]
    outputs = 16 + 2 * 2 * 16 + (32 * 4 + 32) + (64 * 4 + 64) + (128 * 4 + 128) + 10
    assert eight["bias_bytes"] == 4 * outputs
    assert integer_model_bytes(model, 6)["weight_bytes"] == -(-698_768 * 6 // 8)
