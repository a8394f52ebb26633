"""The torch.ao affine QAT baseline: fused layers, its int8 model against its fake-quant
model, checkpoints, config and the command line."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from f8lab.baselines import AffineConfig, AffineQAT, convert_to_int8, prepare_affine_qat
from f8lab.baselines.torch_ao import AffineAdd
from f8lab.cli import main
from f8lab.models import build_model
from f8lab.nn import Add
from f8lab.train import ConfigError, load_config, load_model, train
from f8lab.train.config import config_from_dict
from helpers import TINY_CONFIG, WIDTHS, learn_a_task


def _float(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, 10, stem="small", in_channels=1, width=WIDTHS[name])


def _learned(bits: int, per_channel: bool, steps: int = 30) -> AffineQAT:
    """A QAT ResNet-18 after a few SGD steps on a learnable task: observers, BatchNorm
    statistics and weights have moved as in training."""
    model = prepare_affine_qat(_float("resnet18"), AffineConfig(bits, per_channel))
    return learn_a_task(model, steps, (16, 1, 28, 28))


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v1"])
def test_every_conv_is_fused_with_its_batchnorm_and_adds_are_quantized(name):
    float_model = _float(name)
    model = prepare_affine_qat(float_model, AffineConfig())
    convs = [m for m in float_model.modules() if isinstance(m, nn.Conv2d)]
    fused = [m for m in model.modules() if type(m).__name__ in ("ConvBn2d", "ConvBnReLU2d")]
    assert len(fused) == len(convs)
    assert not [m for m in model.modules() if type(m) in (nn.Conv2d, Add)]
    assert sum(type(m) is nn.BatchNorm2d for m in model.modules()) == len(fused)  # inside them
    adds = [m for m in model.modules() if isinstance(m, AffineAdd)]
    assert len(adds) == sum(isinstance(m, Add) for m in float_model.modules())
    if name.startswith("resnet"):  # each block's ReLU is fused into its add
        assert adds and all(add.relu for add in adds)
        assert not [m for m in model.modules() if type(m) is nn.ReLU]
    assert all(isinstance(m, nn.Conv2d) for m in convs), "the float model is left as it was"


def test_the_quantizers_hold_the_word_length():
    model = prepare_affine_qat(_float("resnet18"), AffineConfig(wl=4, per_channel=True))
    weight = model.network.layer1[0].conv1.weight_fake_quant
    activation = model.network.layer1[0].conv1.activation_post_process
    assert (weight.quant_min, weight.quant_max, weight.qscheme) == (-7, 7, torch.per_channel_symmetric)
    assert (activation.quant_min, activation.quant_max) == (0, 15)


def test_evaluation_does_not_move_the_observers():
    model = _learned(8, False, steps=2)
    scale = model.network.fc.activation_post_process.scale.clone()
    model(torch.rand(8, 1, 28, 28) * 10)  # eval mode: far larger values change nothing
    assert torch.equal(model.network.fc.activation_post_process.scale, scale)
    model.train()(torch.rand(8, 1, 28, 28) * 10)
    model.eval()
    assert not torch.equal(model.network.fc.activation_post_process.scale, scale)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("bits", [8, 6, 4])
def test_int8_model_agrees_with_the_fake_quant_model(bits, per_channel):
    """The only difference between the two is where the rescale rounds: the fake-quant
    model rescales in float, the int8 model by a fixed-point multiplier, so an output may
    round to the neighbouring integer. One layer: at most one step of its output format;
    the logits, through twenty such layers: a few steps of theirs."""
    model = _learned(bits, per_channel)
    int8 = convert_to_int8(model)
    x = torch.randint(0, 256, (64, 1, 28, 28), generator=torch.Generator().manual_seed(2)).float() / 256
    seen: dict[str, torch.Tensor] = {}
    model.network.conv1.register_forward_hook(lambda m, i, o: seen.__setitem__("fake", o))
    int8.converted.get_submodule("network.conv1").register_forward_hook(
        lambda m, i, o: seen.__setitem__("int8", o.dequantize())
    )
    fake, integer = model(x), int8(x)
    first_step = model.network.conv1.activation_post_process.scale.item()
    assert (seen["fake"] - seen["int8"]).abs().max() <= first_step * 1.0001
    assert (seen["fake"] != seen["int8"]).float().mean() < 0.01
    step = model.network.fc.activation_post_process.scale.item()
    assert (fake - integer).abs().max() <= 4 * step * 1.0001
    assert (fake.argmax(1) == integer.argmax(1)).float().mean() >= 0.9


def test_the_converted_model_holds_integers():
    int8 = convert_to_int8(_learned(8, False, steps=2))
    conv = int8.converted.network.layer1[0].conv1
    assert conv.weight().dtype == torch.qint8
    assert int(conv.weight().int_repr().abs().max()) <= 127
    assert conv.scale > 0 and 0 <= conv.zero_point <= 255


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="at most 8 bits"):
        AffineConfig(wl=12)
    with pytest.raises(ValueError, match="averaging"):
        AffineConfig(averaging=0)
    with pytest.raises(TypeError, match="AffineQAT"):
        convert_to_int8(_float("resnet18"))


def test_a_run_trains_saves_loads_and_evaluates_in_both_forms(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text(TINY_CONFIG)
    main(["train", str(path), "--out", str(tmp_path / "fp")])
    main(
        [
            "train",
            str(path),
            "--out",
            str(tmp_path / "ao"),
            "--set",
            "affine.wl=6",
            "--init",
            str(tmp_path / "fp" / "best.pt"),
        ]
    )
    model = load_model(tmp_path / "ao" / "last.pt")
    assert isinstance(model, AffineQAT) and model.config == AffineConfig(wl=6)
    x = torch.rand(4, 1, 28, 28)
    config = load_config(path, "default", ["affine.wl=6"])
    again = train(config, tmp_path / "ao", resume=True, progress=False).model.eval()
    assert torch.equal(again(x), model(x)), "a finished run loads back as it was saved"
    capsys.readouterr()
    results = {}
    for mode in ("fake", "integer"):
        main(["eval", str(tmp_path / "ao" / "last.pt"), "--mode", mode])
        results[mode] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert results[mode]["mode"] == mode and results[mode]["n"] == 32
    for argv in (
        ["eval", "--mode", "onnx"],
        ["eval", "--mode", "float"],
        ["export", "--out", str(tmp_path / "m.onnx")],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([argv[0], str(tmp_path / "ao" / "last.pt"), *argv[1:]])
        assert exit_info.value.code == 2
        assert "torch.ao" in capsys.readouterr().err


def test_quant_and_affine_together_are_refused(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(TINY_CONFIG)
    with pytest.raises(ConfigError, match="quant and affine are both set"):
        load_config(path, "default", ["quant.wl=8", "affine.wl=8"])
    with pytest.raises(ConfigError, match="affine.wl"):
        load_config(path, "default", ["affine.wl=eight"])


def test_a_config_saved_before_the_affine_section_reads_back(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(TINY_CONFIG)
    saved = load_config(path, "default").to_dict()
    del saved["affine"]
    assert config_from_dict(saved).affine is None


def test_the_shipped_config_trains_the_float_models_architecture():
    config = load_config("configs/fashion_mnist/resnet18_torch_ao.yaml", "quick")
    f8 = load_config("configs/fashion_mnist/resnet18_f8.yaml", "quick")
    assert config.affine == AffineConfig(wl=8) and config.quant is None
    assert (config.model, config.data, config.optim) == (f8.model, f8.data, f8.optim)
    int8 = convert_to_int8(prepare_affine_qat(_float("resnet18"), config.affine).eval())
    assert int8(torch.rand(2, 1, 28, 28)).shape == (2, 10)
