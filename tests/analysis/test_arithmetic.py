"""The worked arithmetic: each number it shows is recomputed here from its definition, and
the by-hand layer equals the integer model's own steps."""

import math

import pytest
import torch

from f8lab.analysis import (
    affine_counterpart,
    affine_multiplier,
    conv_patch,
    fixed_point_table,
    fold_steps,
    integer_steps,
    operation_counts,
    reader_of,
)
from f8lab.export import integerize, layer_table
from f8lab.export.integer_ops import IntRequantize
from f8lab.nn import FixAdd, FixConv2d, FixLinear
from f8lab.quant import QuantConfig, requantize
from helpers import pixels, trained_like


def test_fixed_point_table_rounds_half_to_even_and_clamps():
    table = fixed_point_table([0.3, 0.125, 0.375, 5.0, -5.0], 8, 2, True)
    assert table.integer.tolist() == [1, 0, 2, 20, -20]
    table = fixed_point_table([0.3, 5.0, -5.0, -0.2], 8, 5, True)
    assert table.integer.tolist() == [10, 127, -127, -6]
    assert table.clamped.tolist() == [False, True, True, False]
    assert table["value (integer·2^-FL)"].tolist() == [10 / 32, 127 / 32, -127 / 32, -6 / 32]
    unsigned = fixed_point_table([-0.7, 0.5, 300.0], 8, 0, False)
    assert unsigned.integer.tolist() == [0, 0, 255] and unsigned.clamped.tolist() == [True, False, True]


@pytest.mark.parametrize("m", [1e-6, 0.0123, 0.25, 0.5, 0.999999999999, 1.0, 3.7, 1000.0])
def test_affine_multiplier_is_a_normalised_int32_and_a_shift(m):
    m0, shift = affine_multiplier(m)
    assert 2**30 <= m0 < 2**31
    assert abs(m0 * 2.0**-shift - m) <= m * 2.0**-31


def test_affine_multiplier_of_a_power_of_two_is_exact():
    assert affine_multiplier(0.25) == (2**30, 32)


@pytest.mark.parametrize("m", [0.0, -1.0, math.nan, math.inf])
def test_affine_multiplier_refuses_what_is_not_a_rescale(m):
    with pytest.raises(ValueError, match="finite positive"):
        affine_multiplier(m)


@pytest.fixture(scope="module")
def trained():
    model = trained_like("resnet18", QuantConfig()).double()
    images = pixels((2, 1, 28, 28)).double()
    with torch.no_grad():
        model(images)  # an eval pass: the weight formats and pass scales of these images
    integer = integerize(model)
    return model, images, integer_steps(integer, images)


def test_one_output_by_hand_equals_the_integer_model(trained):
    model, _, steps = trained
    step = steps["layer2.0.conv1"]
    conv = step.module
    for channel, row, col in [(0, 0, 0), (3, 2, 5), (conv.weight.shape[0] - 1, 6, 6)]:
        acc = (conv_patch(step, row, col) * conv.weight[channel]).sum() + conv.bias[channel]
        assert acc == step.output.values[0, channel, row, col]
        reader = reader_of(steps, "layer2.0.conv1")
        assert isinstance(reader.module, IntRequantize)
        fl_acc = conv.input_fraclen + int(conv.weight_fraclen)
        out = requantize(acc.reshape(1), fl_acc, reader.output.fraclen, 8, signed=False)
        assert out.item() == reader.output.values[0, channel, row, col]


def test_fold_steps_give_the_integer_models_weight_and_bias(trained):
    model, _, steps = trained
    conv = model.get_submodule("layer1.1.conv2")
    integer_conv = steps["layer1.1.conv2"].module
    for channel in (0, 5):
        fold = fold_steps(conv, channel)
        weights = integer_conv.weight[channel].flatten()
        assert fold["q_w"] == weights[weights.abs().argmax()]
        assert fold["q_b"] == integer_conv.bias[channel]
        s_in = 2.0 ** fold["FL_in"] * fold["α_in"] / fold["levels_in"]
        assert fold["s_in"] == pytest.approx(s_in, rel=1e-12)
        assert fold["W~"] == pytest.approx(fold["W"] * fold["γ/σ"] * fold["s_in"] / fold["s_out"], rel=1e-12)


def test_affine_counterpart_needs_a_multiplier_where_fixed_point_shifts(trained):
    model, _, steps = trained
    affine = affine_counterpart(model.get_submodule("layer2.0.conv1"), steps["layer2.0.conv1"])
    assert affine["affine M0·2^-shift"] == pytest.approx(affine["affine M = s_x·s_w/s_y"], rel=2**-30)
    assert affine["affine z_x (input zero point)"] == 0  # an unsigned (post-ReLU) input
    shifts = layer_table(model).set_index("layer")["shift"]
    assert affine["fixed point: right shift FL_acc − FL_out"] == shifts["layer2.0.conv1"]


def test_operation_counts_match_the_layers_shapes(trained):
    model, images, steps = trained
    multiplies, outputs, add_outputs = 0, 0, 0

    def count(module, inputs, output):
        nonlocal multiplies, outputs, add_outputs
        if isinstance(module, FixAdd):
            add_outputs += output[0].numel()
            return
        per_output = module.weight[0].numel()
        multiplies += output[0].numel() * per_output
        outputs += output[0].numel()

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, (FixConv2d, FixLinear, FixAdd))
    ]
    with torch.no_grad():
        model(images)
    for hook in hooks:
        hook.remove()
    total = operation_counts(steps).loc["total"]
    assert total["8-bit multiplies"] == multiplies
    assert total["affine: 32-bit multiplies"] == outputs + 2 * add_outputs
    assert total["shifts"] > 0 and total["32-bit adds"] >= multiplies
