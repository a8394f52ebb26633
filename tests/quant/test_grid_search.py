"""Grid search returns the argmin it claims, per tensor and per channel."""

import pytest
import torch

from f8lab.quant import choose_fraclen, fraclen_grid_search, fraclen_range, quant_rmse


def brute_force(x, wl, signed):
    lo, hi = fraclen_range(wl, signed)
    errors = {fl: quant_rmse(x, wl, fl, signed).item() for fl in range(lo, hi + 1)}
    best = min(errors.values())
    return max(fl for fl, e in errors.items() if e == best), errors


@pytest.mark.parametrize("wl,signed", [(8, True), (8, False), (4, True), (6, False)])
@pytest.mark.parametrize("scale", [0.003, 0.1, 1.0, 30.0])
def test_grid_search_is_the_argmin(wl, signed, scale):
    x = torch.randn(4096) * scale
    fl, errors = brute_force(x, wl, signed)
    found = fraclen_grid_search(x, wl, signed)
    assert found.item() == fl
    assert all(errors[fl] <= e for e in errors.values())


def test_unsigned_error_is_against_relu():
    x = -torch.rand(100)  # relu(x) = 0: every FL represents it exactly
    assert quant_rmse(x, 8, 3, False).item() == 0
    assert fraclen_grid_search(x, 8, False).item() == 8


def test_per_channel_matches_per_slice():
    x = torch.randn(5, 3, 4, 4) * torch.tensor([0.01, 0.1, 1.0, 10.0, 100.0]).view(5, 1, 1, 1)
    fls = fraclen_grid_search(x, 8, True, dim=0)
    assert fls.tolist() == [fraclen_grid_search(x[c], 8, True).item() for c in range(5)]
    assert fls.tolist() == sorted(fls.tolist(), reverse=True)


def test_formula_and_grid_search_mostly_agree_on_gaussians():
    torch.manual_seed(0)
    agree = [
        choose_fraclen(x, method="std") == choose_fraclen(x, method="grid")
        for x in (torch.randn(20_000) * s for s in torch.logspace(-2, 2, 40))
    ]
    assert sum(agree) / len(agree) >= 0.8


def test_zero_tensor_gets_largest_fraclen():
    assert fraclen_grid_search(torch.zeros(10)).item() == 7


def test_refuses_nan():
    with pytest.raises(ValueError, match="NaN or Inf"):
        fraclen_grid_search(torch.tensor([0.0, float("nan")]))


def test_unknown_method():
    with pytest.raises(ValueError, match="choose one of std, mean, rms, grid"):
        choose_fraclen(torch.randn(4), method="minmax")
