"""The tensors of a model, their statistics, and the formula against grid search on them."""

import pytest
import torch

from f8lab.analysis import (
    ModelTensor,
    channel_std,
    compare_fraclens,
    compare_statistics,
    model_tensors,
    value_stats,
)
from f8lab.analysis.formula_vs_grid import formula_fraclen
from f8lab.analysis.values import gaussian_distance
from f8lab.models import build_model, from_float
from f8lab.quant import QuantConfig
from f8lab.quant.choose import choose_fraclen


def trained_like_float_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("resnet18", 10, stem="small", in_channels=1, width=0.25).train()
    with torch.no_grad():
        model(torch.rand(8, 1, 28, 28))  # running statistics away from their initial values
    return model.eval()


def test_model_tensors_names_every_quantized_tensor():
    model = trained_like_float_model()
    images = torch.rand(4, 1, 28, 28)
    tensors = model_tensors(model, images)
    assert len(tensors) == 62  # 20 convs x (input, weight, folded weight) + the classifier's 2
    by_key = {(t.name, t.kind): t for t in tensors}
    assert torch.equal(by_key["conv1", "activation"].values, images)
    assert torch.equal(by_key["conv1", "weight"].values, model.conv1.weight)
    bn = model.bn1
    gain = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded = model.conv1.weight * gain.view(-1, 1, 1, 1)
    assert torch.allclose(by_key["conv1", "folded weight"].values, folded)
    # the second conv of a block reads BN1's output before the ReLU that its unsigned quantizer performs
    block = model.layer1[0]
    seen = {}
    block.conv2.register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    with torch.no_grad():
        model(images)
    pre_relu = by_key["layer1.0.conv2", "activation"]
    assert not pre_relu.signed and (pre_relu.values < 0).any()
    assert torch.allclose(pre_relu.values.clamp(min=0), seen["x"], atol=1e-6)
    assert model.training is False and torch.equal(model.conv1.weight, by_key["conv1", "weight"].values)


def test_model_tensors_of_a_fixed_point_model_leaves_it_untouched():
    fixed = from_float(trained_like_float_model(), QuantConfig()).train()
    with torch.no_grad():
        fixed(torch.rand(8, 1, 28, 28))
    fixed.eval()
    before = {k: v.clone() for k, v in fixed.state_dict().items()}
    tensors = model_tensors(fixed, torch.rand(4, 1, 28, 28))
    assert len(tensors) == 62
    assert all(torch.equal(v, fixed.state_dict()[k]) for k, v in before.items())


def test_gaussian_distance_tells_gaussians_from_others():
    g = torch.randn(100_000, generator=torch.Generator().manual_seed(0))
    assert gaussian_distance(ModelTensor("g", "weight", True, g)) < 0.01
    assert gaussian_distance(ModelTensor("g", "activation", False, g)) < 0.01  # rectified
    assert gaussian_distance(ModelTensor("g", "activation", False, g + 0.5)) > 0.1
    assert gaussian_distance(ModelTensor("u", "weight", True, torch.rand(100_000) - 0.5)) > 0.03


def test_value_stats_and_channel_std():
    spreads = torch.tensor([[1.0], [2.0], [4.0], [8.0]])
    x = torch.randn(4, 1000, generator=torch.Generator().manual_seed(0)) * spreads
    tensor = ModelTensor("w", "weight", True, x)
    assert torch.allclose(channel_std(tensor), torch.tensor([1.0, 2.0, 4.0, 8.0]), rtol=0.1)
    row = value_stats([tensor]).iloc[0]
    assert row.channel_std_spread == pytest.approx(8.0, rel=0.15)
    assert abs(row["kurtosis"]) > 0.5  # a mixture of widths has heavy tails


def test_formula_and_grid_search_on_gaussians_and_elsewhere():
    generator = torch.Generator().manual_seed(0)
    gaussian = ModelTensor("g", "folded weight", True, torch.randn(64, 500, generator=generator) * 0.05)
    shifted = ModelTensor("s", "activation", False, torch.randn(2, 8, 50, 50, generator=generator) + 2.0)
    table = compare_fraclens([gaussian, shifted], repeats=1)
    g, s = table.iloc[0], table.iloc[1]
    assert g.agree == 1.0 and g.error_ratio == 1.0 and g.formula_fl == g.grid_fl
    assert s.error_ratio >= 1.0
    per_channel = compare_fraclens([gaussian], per_channel=True, repeats=1).iloc[0]
    assert len(per_channel.formula_fl) == 64 and 0.0 <= per_channel.agree <= 1.0
    assert per_channel.error_ratio >= 1.0 - 1e-12


def test_compare_statistics_ranks_every_metric_and_source():
    generator = torch.Generator().manual_seed(0)
    tensors = [
        ModelTensor(
            f"a{i}", "activation", False, torch.randn(4, 8, 20, 20, generator=generator) * sigma + shift
        )
        for i, (sigma, shift) in enumerate([(0.3, 0.0), (1.1, 0.0), (0.5, 1.0), (2.0, -1.0)])
    ]
    table = compare_statistics(tensors)
    assert sorted(zip(table.metric, table.source)) == sorted(
        (m, s) for m in ("std", "mean", "rms", "post-ReLU std") for s in ("published", "derived")
    )
    assert table.agree.between(0, 100).all() and (table.worst_ratio >= table.mean_ratio).all()
    assert (table.mean_ratio >= 1.0 - 1e-12).all()
    assert list(table.agree) == sorted(table.agree, reverse=True)
    # each row is compare_fraclens's answer for that metric and source
    row = table.set_index(["metric", "source"]).loc[("rms", "derived")]
    direct = compare_fraclens(tensors, metric="rms", source="derived", repeats=1)
    assert row.agree == pytest.approx(100 * direct.agree.mean())
    assert row.worst_ratio == pytest.approx(direct.error_ratio.max())


def test_post_relu_std_reads_the_pre_relu_sigma_of_a_rectified_gaussian():
    """On a zero-mean Gaussian the std of relu(x), over 0.584, is the std before the ReLU:
    both statistics give the same FL at every σ. On a shifted input, where little is
    rectified, the post-ReLU std reads a wider distribution: a coarser FL."""
    generator = torch.Generator().manual_seed(0)
    for sigma in (0.01, 0.1, 0.7, 3.0, 40.0):
        x = torch.randn(200_000, generator=generator) * sigma
        pre = choose_fraclen(x, 8, False, "std")
        post = formula_fraclen(x, 8, False, "post-ReLU std", None, "published")
        assert post == pre, sigma
    x = torch.randn(200_000, generator=generator) + 2.0  # mostly positive: little is rectified
    assert formula_fraclen(x, 8, False, "post-ReLU std", None, "published") < choose_fraclen(
        x, 8, False, "std"
    )
