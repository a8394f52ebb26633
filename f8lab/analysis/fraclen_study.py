"""Monte Carlo study of the fractional-length formula (docs/method.md §2).

For ``x ~ N(0, σ²)`` (signed) or ``relu(x)`` (unsigned) the relative error
``E(σ, FL) = RMS(target - Q_FL(x)) / σ`` is U-shaped in σ for each FL; the optimal
``FL*(σ)`` is a staircase in log σ whose steps ``σ_th(FL) = C / 2**FL`` give the formula's
coefficient ``C = 2**mean(FL + log2 σ_th)``.

Each σ gets its own samples. Since ``E(σ, FL)`` depends on ``σ·2**FL`` alone, samples
shared by every σ would make every step the same crossing and the average over steps would
remove no sampling noise; independent samples make the fit an average over independent
crossings.
"""

from __future__ import annotations

import numpy as np
import torch

from f8lab.quant import fix_quant, fraclen_range, tensor_stat
from f8lab.quant.formula import METRICS

PAPER_SIGMAS = np.logspace(-3, 3, 1000)  # the σ grid of docs/method.md §2
PAPER_SAMPLES = 10_000  # samples per σ


def _standard_normal(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def relative_error(
    sigmas: np.ndarray, wl: int = 8, signed: bool = True, samples: int = PAPER_SAMPLES, seed: int = 0
) -> np.ndarray:
    """``E(σ, FL)`` for every valid FL (rows, 0..FL_max) and every σ (columns)."""
    sigma = torch.as_tensor(np.asarray(sigmas, dtype=np.float64))[:, None]
    x = sigma * _standard_normal((len(sigma), samples), seed)  # (n_sigma, samples) float64
    target = x if signed else x.clamp(min=0)
    lo, hi = fraclen_range(wl, signed)
    rows = []
    for fl in range(lo, hi + 1):
        rms = (target - fix_quant(x, wl, fl, signed)).square().mean(dim=1).sqrt()
        rows.append((rms / sigma[:, 0]).numpy())
    return np.stack(rows)


def optimal_fraclen_curve(
    sigmas: np.ndarray, wl: int = 8, signed: bool = True, samples: int = PAPER_SAMPLES, seed: int = 0
) -> np.ndarray:
    """Monte Carlo ``FL*(σ) = argmin_FL E(σ, FL)`` for each σ; ties go to the larger FL."""
    errors = relative_error(sigmas, wl, signed, samples, seed)
    return errors.shape[0] - 1 - np.argmin(errors[::-1], axis=0)


def step_thresholds(sigmas: np.ndarray, fl_star: np.ndarray) -> dict[int, float]:
    """The σ at which the staircase steps from FL to FL-1, for each step inside the grid.

    Near a step the Monte Carlo FL* may flicker between FL and FL-1; the step is placed
    after the first ``n`` grid points, ``n`` being how many points have ``FL* >= FL``, at
    the geometric mean of the two grid points around it.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    thresholds = {}
    for fl in range(int(fl_star.max()), int(fl_star.min()), -1):
        n = int(np.count_nonzero(fl_star >= fl))
        if 0 < n < len(sigmas):
            thresholds[fl] = float(np.sqrt(sigmas[n - 1] * sigmas[n]))
    return thresholds


def fit_coefficient(thresholds: dict[int, float]) -> float:
    """``C = 2**mean(FL + log2 σ_th)`` over the observed steps."""
    if not thresholds:
        raise ValueError("no step of the staircase lies inside the σ grid; widen it")
    return float(2 ** np.mean([fl + np.log2(s) for fl, s in thresholds.items()]))


def metric_per_sigma(metric: str, signed: bool, samples: int = 1_000_000, seed: int = 0) -> float:
    """The statistic of ``N(0, 1)`` samples (all the statistics scale with σ)."""
    return float(tensor_stat(_standard_normal((samples,), seed), metric, signed))


def derive_coefficients(
    wl: int = 8,
    signed: bool = True,
    sigmas: np.ndarray = PAPER_SIGMAS,
    samples: int = PAPER_SAMPLES,
    seeds: tuple[int, ...] = (0, 1, 2, 3),
) -> dict[str, float]:
    """Fit ``C`` for every statistic by the Monte Carlo procedure.

    Each seed is one independent run of the procedure; the std's C is the geometric mean
    over the runs, and another statistic's C is the std's C times that statistic at σ = 1.

    Returns:
        ``{metric: C}`` for "std", "mean" and "rms".
    """
    fits = [
        fit_coefficient(step_thresholds(sigmas, optimal_fraclen_curve(sigmas, wl, signed, samples, seed)))
        for seed in seeds
    ]
    c_sigma = float(2 ** np.mean(np.log2(fits)))
    return {metric: c_sigma * metric_per_sigma(metric, signed) for metric in METRICS}
