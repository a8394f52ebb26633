"""quant.fraclen_method=max: the finest FL at which the largest value fits, so that nothing clips."""

from __future__ import annotations

import pytest
import torch

from f8lab.quant import choose_fraclen, fix_quant, fraclen_range, int_range, select_fraclen

WIDTHS = range(2, 17)


def _with_peak(peak: float, signed: bool, n: int = 1000) -> torch.Tensor:
    """Random values of magnitude below ``peak``, and ``peak`` itself (negative when signed,
    where the symmetric range makes it as hard to hold as a positive one)."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * peak * 0.999
    x[7] = -peak if signed else peak
    return x


def _clips(x: torch.Tensor, wl: int, fl: int, signed: bool) -> bool:
    """Whether some value of ``x`` lies outside the range of the format at ``fl``."""
    target = x if signed else x.clamp(min=0)
    return bool((target.abs() * 2.0**fl > int_range(wl, signed)[1]).any())


def _only_rounded(x: torch.Tensor, wl: int, fl: int, signed: bool) -> bool:
    """Whether quantizing ``x`` at ``fl`` only rounds it (the clamp changes nothing)."""
    target = x if signed else x.clamp(min=0)
    return torch.equal(fix_quant(x, wl, fl, signed), torch.round(target * 2.0**fl) / 2.0**fl)


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("wl", WIDTHS)
def test_picks_the_finest_fraclen_at_which_nothing_clips(wl, signed):
    lo, hi = fraclen_range(wl, signed)
    qmax = int_range(wl, signed)[1]
    for fl in range(lo, hi + 1):  # every FL, FL_max included
        exact = _with_peak(qmax * 2.0**-fl, signed)  # the largest value exactly at the top
        assert choose_fraclen(exact, wl, signed, "max") == fl
        assert not _clips(exact, wl, fl, signed) and _only_rounded(exact, wl, fl, signed)
        if fl < hi:
            assert _clips(exact, wl, fl + 1, signed), "one FL finer would clip"
        if fl > lo:  # a hair above the top: one FL coarser
            above = _with_peak(qmax * 2.0**-fl * (1 + 2**-20), signed)
            assert choose_fraclen(above, wl, signed, "max") == fl - 1
            assert _clips(above, wl, fl, signed)
            assert not _clips(above, wl, fl - 1, signed) and _only_rounded(above, wl, fl - 1, signed)


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_range_ends_and_per_channel(signed):
    wl = 8
    lo, hi = fraclen_range(wl, signed)
    assert choose_fraclen(torch.zeros(10), wl, signed, "max") == hi  # nothing to hold
    assert choose_fraclen(torch.full((10,), 1e6), wl, signed, "max") == lo  # too large: FL 0
    negative = torch.full((10,), -100.0)
    assert choose_fraclen(negative, wl, signed, "max") == (0 if signed else hi)  # relu(x) = 0
    qmax = int_range(wl, signed)[1]
    rows = torch.stack([_with_peak(qmax * 2.0**-fl, signed, 50) for fl in (0, 3, hi)])
    assert choose_fraclen(rows, wl, signed, "max", dim=0).tolist() == [0, 3, hi]
    choice = select_fraclen(rows.float(), wl, signed, "max", dim=0)
    assert choice.fraclen.tolist() == [0, 3, hi] and bool(choice.finite)


def test_non_finite_values_are_refused_or_flagged():
    x = torch.tensor([1.0, float("nan")])
    with pytest.raises(ValueError, match="NaN"):
        choose_fraclen(x, 8, True, "max")
    assert not bool(select_fraclen(x, 8, True, "max").finite)
