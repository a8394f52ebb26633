"""The Monte Carlo study of docs/method.md §2 and the stored coefficient table."""

import numpy as np
import pytest

from f8lab.analysis import (
    derive_coefficients,
    fit_coefficient,
    optimal_fraclen_curve,
    relative_error,
    step_thresholds,
)
from f8lab.analysis.coefficients import derive_entry, derive_table
from f8lab.quant.formula import coefficient_table

SMALL = dict(sigmas=np.logspace(-3, 3, 300), samples=4000)


def test_error_curves_are_u_shaped():
    sigmas = np.logspace(-3, 3, 200)
    errors = relative_error(sigmas, wl=8, signed=True, samples=4000)
    assert errors.shape == (8, 200)
    for row in errors:
        best = row.argmin()
        assert 0 < best < len(sigmas) - 1  # underflow on the left, overflow on the right
        assert row[0] > 10 * row[best] and row[-1] > 10 * row[best]


@pytest.mark.parametrize("signed", [True, False])
def test_optimal_fraclen_is_a_descending_staircase(signed):
    sigmas = SMALL["sigmas"]
    fl_star = optimal_fraclen_curve(sigmas, 8, signed, samples=SMALL["samples"])
    assert fl_star[0] == (7 if signed else 8) and fl_star[-1] == 0
    # away from the steps, larger σ never gets a larger FL
    smooth = np.maximum.accumulate(fl_star[::-1])[::-1]
    assert np.mean(smooth == fl_star) > 0.95


def test_fit_recovers_a_known_coefficient():
    sigmas = np.logspace(-3, 3, 2000)
    c = 40.0
    fl_star = np.clip(np.floor(np.log2(c / sigmas)), 0, 7)
    assert fit_coefficient(step_thresholds(sigmas, fl_star)) == pytest.approx(c, rel=0.01)


def test_fit_refuses_an_empty_staircase():
    with pytest.raises(ValueError, match="widen it"):
        fit_coefficient({})


@pytest.mark.parametrize("signed,published", [(True, 40), (False, 70)])
def test_monte_carlo_reproduces_published_8bit_coefficients(signed, published):
    c = derive_coefficients(8, signed, seeds=(0,), **SMALL)["std"]
    assert c == pytest.approx(published, rel=0.1)


def test_stored_8bit_entry_is_what_the_code_derives():
    assert derive_entry(8) == coefficient_table()["derived"]["8"]


@pytest.mark.slow
def test_stored_table_is_what_the_code_derives():
    assert derive_table()["derived"] == coefficient_table()["derived"]
