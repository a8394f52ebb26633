"""The integer model equals the fake-quant model bit for bit, on every architecture."""

import pytest
import torch
from torch import nn

from f8lab.data import default_data_root
from f8lab.data.fashion_mnist import FILES, raw_folder
from f8lab.export import integerize
from f8lab.models import build_model, from_float
from f8lab.quant import QuantConfig
from helpers import SHAPES, WIDTHS, assert_bit_exact, calibrated, pixels, shifted_block_outputs

CASES = [(name, stem) for name in WIDTHS for stem in SHAPES]


@pytest.mark.parametrize("name,stem", CASES)
def test_bit_exact_on_random_inputs(name, stem):
    carrier = torch.int64 if stem == "small" else torch.float64
    assert_bit_exact(calibrated(name, stem), pixels(SHAPES[stem]), carrier)


def test_integer_carrier_is_integer_only():
    integer = integerize(calibrated("resnet18", "small"))
    out = integer(pixels(SHAPES["small"]))
    assert out.dtype == torch.int32
    assert all(not b.is_floating_point() for b in integer.buffers())


@pytest.mark.parametrize(
    "quant",
    [QuantConfig(per_channel=True, fraclen_method="grid"), QuantConfig(clipping=False), QuantConfig(wl=6)],
    ids=["per-channel-grid", "no-clipping", "6-bit"],
)
def test_bit_exact_under_other_settings(quant):
    assert_bit_exact(calibrated("mobilenet_v2", "small", quant), pixels(SHAPES["small"]))


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
@pytest.mark.parametrize("by", [1, -1])
def test_bit_exact_when_the_sum_and_identity_formats_differ(name, by):
    model = shifted_block_outputs(calibrated(name, "small"), by)
    assert_bit_exact(model, pixels(SHAPES["small"]))


@pytest.mark.skipif(
    not (raw_folder(default_data_root()) / FILES[2].name).is_file(),
    reason="Fashion-MNIST not installed: run `make data`",
)
def test_bit_exact_on_fashion_mnist_images():
    from f8lab.data import fashion_mnist

    test = fashion_mnist(train=False)
    x = test.data[:16].unsqueeze(1).float() / 256
    assert_bit_exact(calibrated("resnet18", "small"), x)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
@pytest.mark.parametrize("by", [0, 1, -1])
def test_bit_exact_with_the_8_bit_residual(name, by):
    """residual="int8": the branch (and a projection) is requantized to 8 bits before the
    add; the integer model does the same, whatever FL the sum and its terms sit at."""
    model = shifted_block_outputs(calibrated(name, "small", QuantConfig(residual="int8")), by)
    assert_bit_exact(model, pixels(SHAPES["small"]))
    if by == 0:
        with torch.no_grad():  # the 8-bit add rounds the branch: another model
            x = pixels(SHAPES["small"])
            assert not torch.equal(model.float()(x), calibrated(name, "small")(x))


@pytest.mark.parametrize("width", [0.25, 0.35, 0.5, 0.75, 1.0])
def test_mobilenet_v2_integerizes_at_every_width(width):
    """At width 0.25 the first block has a residual (8 channels in and out); it reads an
    unsigned tensor (ReLU6) and writes a signed one; their shared clipping level keeps
    it exact."""
    torch.manual_seed(0)
    quant = QuantConfig()
    float_model = build_model("mobilenet_v2", 10, stem="small", in_channels=1, width=width)
    model = from_float(float_model.train(), quant).train()
    assert model.features[1].use_res_connect == (width == 0.25)
    with torch.no_grad():
        for _ in range(2):
            model(pixels(SHAPES["small"]))
    assert_bit_exact(model.eval(), pixels(SHAPES["small"]), carrier=torch.float64)


def test_refuses_uncalibrated_training_floating_and_unshared_models():
    model = build_model("resnet18", 10, quant=QuantConfig(), stem="small", in_channels=1, width=0.25)
    with pytest.raises(ValueError, match="evaluation mode"):
        integerize(model)
    with pytest.raises(ValueError, match="never calibrated"):
        integerize(model.eval())
    with pytest.raises(ValueError, match="floating-mode"):
        integerize(calibrated("resnet18", "small", QuantConfig(floating=True)))
    with pytest.raises(ValueError, match="not a power of two"):
        integerize(calibrated("resnet18", "small", QuantConfig(share_clipping=False)))
    with pytest.raises(ValueError, match="fixed-point model"):
        integerize(build_model("resnet18").eval())


def test_refuses_unknown_layers():
    model = calibrated("resnet18", "small")
    model.layer1[0].act1 = nn.Sequential(model.layer1[0].act1, nn.GELU())
    with pytest.raises(ValueError, match=r"does not know layer layer1.0.act1.1 \(GELU\)"):
        integerize(model)


def test_other_input_sizes_need_their_own_integerization():
    integer = integerize(calibrated("resnet18", "small"))
    with pytest.raises(RuntimeError, match="integerize it with an input of this size"):
        integer(pixels((1, 1, 64, 64)))


def test_layer_table_matches_the_integer_model():
    from f8lab.export import layer_table
    from f8lab.export.integer_ops import IntConv2d

    model = calibrated("resnet18", "small")
    with torch.no_grad():
        model(pixels(SHAPES["small"]))
    table = layer_table(model).set_index("layer")
    integer = integerize(model)
    convs = {name: m for name, m in integer.body.named_modules() if isinstance(m, IntConv2d)}
    assert set(convs) | {"fc"} == set(table.index)
    for name, conv in convs.items():
        row = table.loc[name]
        assert row.fl_in == conv.input_fraclen and row.fl_w == int(conv.weight_fraclen)
        assert row["shift"] == row.fl_acc - row.fl_out
    assert table.loc["fc", "fl_acc"] == integer.output_fraclen
    assert table.loc["layer1.0.conv1", "alpha"] == model.act1.alpha.item()
