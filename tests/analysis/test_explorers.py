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
    formula_explorer,
    fraclen_choice_explorer,
    fraclen_choices,
    integer_layer_explorer,
    quant_explorer,
    quantization_summary,
    run_explorer,
    training_runs,
)
from f8lab.quant.choose import choose_fraclen  # noqa: E402


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
    tensors = [ModelTensor("w", "weight", True, torch.randn(5000, generator=generator) * 0.1),
               ModelTensor("x", "activation", False, torch.randn(5000, generator=generator) + 1)]
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
    pd.DataFrame(dict(epoch=[1, 1, 2, 2], layer=["conv1"] * 4, tensor=["input", "weight"] * 2,
                      signed=[False, True] * 2, fl=[8.0, 6.0, 8.0, 7.0])).to_csv(
        tmp_path / "ablations/variant_0/fraclens.csv", index=False)
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
    q, bound = accumulator_bound(weight, 3, 8, input_signed=False)
    assert q.flatten().tolist() == [4.0, -2.0, 1.0, 0.0]
    assert bound == (4 + 2) * 255
    # a worst-case input reaches it: each input at its largest integer with its weight's sign
    x = torch.where(q[0] >= 0, 255.0, 0.0)
    assert float((q[0] * x).sum() - (q[0] * torch.where(q[0] < 0, 255.0, 0.0)).sum()) == bound
    assert accumulator_bound(weight, 3, 8, input_signed=True)[1] == 6 * 127


def test_integer_layer_explorer_follows_its_controls():
    generator = torch.Generator().manual_seed(0)
    def values(*shape):
        return torch.randn(*shape, generator=generator)

    tensors = [ModelTensor("conv1", "folded weight", True, values(8, 1, 3, 3)),
               ModelTensor("layer1.conv", "activation", False, values(2, 8, 4, 4).abs()),
               ModelTensor("layer1.conv", "folded weight", True, values(8, 8, 3, 3) * 0.1)]
    table = pd.DataFrame(dict(layer=["conv1", "layer1.conv"], shift=[9, 7]))
    box = integer_layer_explorer(tensors, table)
    (picker, bits), summary = box.children[0].children, box.children[1]
    assert "<b>conv1</b>: 8-bit weights" in summary.value and "shift: 9" in summary.value
    picker.value = "layer1.conv"
    assert "unsigned inputs" in summary.value and "shift: 7" in summary.value
    bits.value = 4
    fl = int(choose_fraclen(tensors[2].values, 4, True))
    _, bound = accumulator_bound(tensors[2].values, fl, 4, False)
    assert f"4-bit weights at FL {fl}" in summary.value and f"2^{np.log2(bound):.1f}" in summary.value
    with pytest.raises(ValueError, match="folded weights"):
        integer_layer_explorer(tensors[1:2], table)
