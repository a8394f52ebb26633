"""The explorers respond to their controls (in a kernel; the browser test drives them in
JupyterLab), and the quantization summary counts right."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from f8lab.analysis import (  # noqa: E402
    ModelTensor,
    accumulator_bound,
    formats_at_width,
    formula_explorer,
    fraclen_choice_explorer,
    fraclen_choices,
    integer_layer_explorer,
    model_tensors,
    quant_explorer,
    quantization_summary,
    run_explorer,
    training_runs,
)
from f8lab.export import layer_table  # noqa: E402
from f8lab.quant import QuantConfig  # noqa: E402
from f8lab.quant.choose import choose_fraclen  # noqa: E402
from helpers import pixels, trained_like  # noqa: E402


def test_quantization_summary():
    x = torch.tensor([0.0, 0.25, 0.5, 3.0, -3.0])
    summary = quantization_summary(x, 4, 2, signed=True)  # levels -7..7 at step 1/4: ±1.75
    assert summary["clamped"] == pytest.approx(2 / 5)
    expected = torch.tensor([0.0, 0.0, 0.0, 1.25, 1.25]).square().mean().sqrt().item()
    assert summary["rmse"] == pytest.approx(expected)
    assert summary["relative_error"] == pytest.approx(expected / x.std(correction=0).item())


def test_quant_explorer_follows_its_sliders():
    values = torch.randn(5000, generator=torch.Generator().manual_seed(0)) * 0.1
    tensors = [ModelTensor("a", "weight", True, values), ModelTensor("b", "activation", False, values)]
    box = quant_explorer(tensors)
    picker, summary = box.children[0], box.children[2]
    bits, fraclen, _, to_grid = box.children[1].children
    assert "[8, 7]" in summary.value and (fraclen.min, fraclen.max) == (0, 7)
    fraclen.value = 4
    assert "[8, 4]" in summary.value
    to_grid.click()
    assert f"[8, {fraclen.value}]" in summary.value and fraclen.value == 7
    bits.value = 4
    assert (fraclen.min, fraclen.max) == (0, 3) and "[4, 3]" in summary.value
    picker.value = 1
    assert "unsigned" in summary.value and fraclen.max == 4
    with pytest.raises(ValueError, match="at least one tensor"):
        quant_explorer([])


def test_formula_explorer_redraws_for_each_width():
    box = formula_explorer(np.logspace(-3, 3, 100), samples=500)
    (bits, kind), caption = box.children[0].children, box.children[1]
    assert "8-bit signed" in caption.value
    bits.value = 4
    assert "4-bit signed" in caption.value
    kind.value = False
    assert "4-bit unsigned" in caption.value


def test_fraclen_choice_explorer_follows_its_controls():
    generator = torch.Generator().manual_seed(0)
    tensors = [
        ModelTensor("w", "weight", True, torch.randn(5000, generator=generator) * 0.1),
        ModelTensor("x", "activation", False, torch.randn(5000, generator=generator) + 1),
    ]
    box = fraclen_choice_explorer(tensors)
    (picker, bits), summary = box.children[0].children, box.children[1]
    choices = fraclen_choices(tensors[0].values, 8, True)
    assert set(choices) == {"grid search", "formula (std)", "formula (mean)", "formula (rms)"}
    assert f"grid search: FL <b>{choices['grid search'][0]}</b> (1.00×" in summary.value
    # grid search has the smallest error of every valid FL
    assert all(rmse >= choices["grid search"][1] for _, rmse in choices.values())
    bits.value = 4
    four = fraclen_choices(tensors[0].values, 4, True)
    assert f"formula (std): FL <b>{four['formula (std)'][0]}</b>" in summary.value
    picker.value = 1
    unsigned = fraclen_choices(tensors[1].values, 4, False)
    assert f"grid search: FL <b>{unsigned['grid search'][0]}</b>" in summary.value
    with pytest.raises(ValueError, match="at least one tensor"):
        fraclen_choice_explorer([])


def test_run_explorer_lists_the_runs_and_draws_each(tmp_path, capsys):
    metrics = pd.DataFrame(dict(epoch=[1, 2], top1=[50.0, 60.0], train_loss=[1.0, 0.8]))
    for run in ("fp", "ablations/variant_0"):
        (tmp_path / run).mkdir(parents=True)
        metrics.to_csv(tmp_path / run / "metrics.csv", index=False)
    pd.DataFrame(
        dict(
            epoch=[1, 1, 2, 2],
            layer=["conv1"] * 4,
            tensor=["input", "weight"] * 2,
            signed=[False, True] * 2,
            fl=[8.0, 6.0, 8.0, 7.0],
        )
    ).to_csv(tmp_path / "ablations/variant_0/fraclens.csv", index=False)
    assert list(training_runs(tmp_path)) == ["ablations/variant_0", "fp"]
    capsys.readouterr()
    picker = run_explorer(tmp_path).children[0]
    # outside a kernel the figures are printed: learning curves and the FL heatmaps ...
    assert capsys.readouterr().out.count("Figure(") == 2
    picker.value = "fp"
    assert capsys.readouterr().out.count("Figure(") == 1  # ... a float run's curves only
    with pytest.raises(ValueError, match="no training run"):
        run_explorer(tmp_path / "fp" / "nothing")


def test_accumulator_bound_is_the_worst_case_of_the_integer_weights():
    weight = torch.tensor([[[[0.5, -0.25]]], [[[0.125, 0.0]]]])  # 2 output channels
    q, bound = accumulator_bound(weight, 8, 3, input_signed=False)
    assert q.flatten().tolist() == [4.0, -2.0, 1.0, 0.0]
    assert bound == (4 + 2) * 255
    # a worst-case input reaches it: each input at its largest integer with its weight's sign
    x = torch.where(q[0] >= 0, 255.0, 0.0)
    assert float((q[0] * x).sum() - (q[0] * torch.where(q[0] < 0, 255.0, 0.0)).sum()) == bound
    assert accumulator_bound(weight, 8, 3, input_signed=True)[1] == 6 * 127


@pytest.fixture(scope="module")
def trained_model():
    model = trained_like("resnet18", QuantConfig())
    torch.manual_seed(0)
    return model, pixels((4, 1, 28, 28))


def test_formats_at_width_are_the_models_own_at_8_bits(trained_model):
    model, images = trained_model
    tensors = model_tensors(model, images)  # an evaluation pass: the weight FLs of these weights
    own = layer_table(model).set_index("layer")
    at8 = formats_at_width(model, tensors, 8).set_index("layer")
    assert len(at8) == len(own) - 1  # every convolution; the classifier is not one
    # the formula's choice on the folded weights, as the model's own weight quantizers make
    # it (in float32, where a statistic at a step's threshold can round to either side)
    for t in tensors:
        if t.kind == "folded weight":
            assert at8.fl_w[t.name] == int(choose_fraclen(t.values, 8, True))
    gap = (at8.fl_w - own.fl_w.loc[at8.index]).abs()
    assert gap.max() <= 1 and (gap == 0).mean() >= 0.9
    assert (at8["shift"] == at8.fl_in + at8.fl_w - at8.fl_out).all()
    # one more bit: the formula's FLs move up by about one, the accumulator grows
    at16 = formats_at_width(model, tensors, 16).set_index("layer")
    assert ((at16.fl_w - at8.fl_w) >= 6).all() and (at16.accumulator_bits > at8.accumulator_bits + 14).all()
    with pytest.raises(ValueError, match="fixed-point model"):
        formats_at_width(model, [], 8)


def test_integer_layer_explorer_follows_its_controls(trained_model):
    model, images = trained_model
    box = integer_layer_explorer(model, images)
    (picker, bits), summary = box.children[0].children, box.children[1]
    assert bits.max == 16 and picker.options[0] == "conv1"
    assert "<b>conv1</b> at 8 bits" in summary.value and "input FL 8 (unsigned)" in summary.value
    picker.value = "layer2.0.conv1"
    bits.value = 12
    row = formats_at_width(model, model_tensors(model, images), 12).set_index("layer").loc["layer2.0.conv1"]
    assert f"weights at FL {int(row.fl_w)}" in summary.value
    assert f"requantization shift {int(row['shift'])}" in summary.value
    assert f"2^{row.accumulator_bits:.1f}" in summary.value
