"""The fractional-length formula, its coefficients and statistics."""

import math

import pytest
import torch

from f8lab.quant import choose_fraclen, coefficient, fraclen_from_stat, tensor_stat
from f8lab.quant.formats import MAX_WORD_LENGTH, MIN_WORD_LENGTH
from f8lab.quant.formula import METRICS

PUBLISHED = {
    (True, "std"): 40,
    (False, "std"): 70,
    (True, "mean"): 30,
    (False, "mean"): 30,
    (True, "rms"): 40,
    (False, "rms"): 50,
}


@pytest.mark.parametrize("signed,metric", PUBLISHED)
def test_published_8bit_thresholds(signed, metric):
    c = PUBLISHED[signed, metric]
    assert coefficient(8, signed, metric) == c
    hi = 7 if signed else 8
    for fl in range(1, hi + 1):
        threshold = c / 2**fl  # the staircase steps from FL to FL-1 here
        assert fraclen_from_stat(threshold * 0.999, 8, signed, metric) == fl
        assert fraclen_from_stat(threshold * 1.001, 8, signed, metric) == fl - 1


def test_clamped_to_valid_range():
    assert fraclen_from_stat(1e-9) == 7
    assert fraclen_from_stat(1e-9, signed=False) == 8
    assert fraclen_from_stat(1e9) == 0


def test_zero_variance_gives_largest_fraclen():
    assert fraclen_from_stat(0.0) == 7
    assert fraclen_from_stat(tensor_stat(torch.full((10,), 3.0))) == 7


def test_tensor_stats_give_one_fraclen_per_channel():
    stats = torch.tensor([0.0, 0.01, 0.3, 1.0, 100.0])
    fls = fraclen_from_stat(stats)
    assert fls.dtype == torch.long
    assert fls.tolist() == [fraclen_from_stat(float(s)) for s in stats]


@pytest.mark.parametrize("wl", range(MIN_WORD_LENGTH, MAX_WORD_LENGTH + 1))
def test_every_word_length_has_coefficients(wl):
    for signed in (True, False):
        for metric in METRICS:
            assert coefficient(wl, signed, metric, "derived") > 0
    hi = wl - 1
    assert fraclen_from_stat(1e-12, wl) == hi


def test_derived_coefficients_grow_about_twofold_per_bit():
    ratios = [
        coefficient(wl + 1, True, "std", "derived") / coefficient(wl, True, "std", "derived")
        for wl in range(4, 16)
    ]
    assert all(1.7 < r < 2.3 for r in ratios), ratios


def test_derived_coefficients_match_method_reference_values():
    # docs/method.md §2: signed C ≈ 12 at 6 bit and ≈ 3.8 at 4 bit; 8 bit about 38-40 and ~70
    assert coefficient(6, True, "std") == pytest.approx(12, rel=0.05)
    assert coefficient(4, True, "std") == pytest.approx(3.8, rel=0.05)
    assert coefficient(8, True, "std", "derived") == pytest.approx(40, rel=0.05)
    assert coefficient(8, False, "std", "derived") == pytest.approx(70, rel=0.1)


def test_published_is_default_at_8bit_and_derived_elsewhere():
    assert coefficient(8, True, "std", "derived") != 40
    assert coefficient(6, True, "std", "published") == coefficient(6, True, "std", "derived")


def test_statistics():
    x = torch.tensor([-3.0, -1.0, 1.0, 3.0])
    assert tensor_stat(x, "std").item() == pytest.approx(math.sqrt(5))
    assert tensor_stat(x, "mean").item() == pytest.approx(2.0)
    assert tensor_stat(x, "mean", signed=False).item() == pytest.approx(1.0)
    assert tensor_stat(x, "rms", signed=False).item() == pytest.approx(math.sqrt(10 / 4))
    per_channel = tensor_stat(torch.stack([x, 2 * x]), "std", dim=0)
    assert per_channel.tolist() == pytest.approx([math.sqrt(5), 2 * math.sqrt(5)])


def test_unsigned_std_is_of_the_tensor_before_relu():
    x = torch.randn(100_000)
    assert tensor_stat(x, "std", signed=False) == tensor_stat(x, "std", signed=True)


@pytest.mark.parametrize(
    "call,error,message",
    [
        (lambda: fraclen_from_stat(float("nan")), ValueError, "must be finite"),
        (lambda: fraclen_from_stat(-1.0), ValueError, ">= 0, got -1.0"),
        (lambda: fraclen_from_stat(torch.tensor([1.0, float("inf")])), ValueError, "non-finite"),
        (lambda: fraclen_from_stat(1.0, metric="max"), ValueError, "choose one of std, mean, rms"),
        (lambda: fraclen_from_stat(1.0, wl=20), ValueError, "word length 20"),
        (lambda: choose_fraclen(torch.tensor([1.0, float("nan")])), ValueError, "NaN or Inf"),
        (lambda: coefficient(8, source="paper"), ValueError, "published, derived"),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
