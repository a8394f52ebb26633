"""The explorers respond to their controls (in a kernel; the browser test drives them in
JupyterLab), and the quantization summary counts right."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from f8lab.analysis import ModelTensor, formula_explorer, quant_explorer, quantization_summary  # noqa: E402


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
