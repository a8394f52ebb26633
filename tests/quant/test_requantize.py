"""requantize equals clamp(round_half_even(a / 2^n)) exactly, with integer operations."""

import numpy as np
import pytest
import torch

from f8lab.quant import int_range, requantize


def reference(acc: np.ndarray, n: int, wl: int, signed: bool) -> np.ndarray:
    """float64 numpy: a / 2^n is exact below 2^53, np.rint rounds half to even."""
    qmin, qmax = int_range(wl, signed)
    return np.clip(np.rint(acc.astype(np.float64) / 2.0**n), qmin, qmax)


@pytest.mark.parametrize("n", [-3, 0, 1, 2, 5, 9, 14, 20])
@pytest.mark.parametrize("wl,signed", [(8, True), (8, False), (4, True), (16, True)])
def test_matches_reference_on_random_int32(n, wl, signed):
    generator = torch.Generator().manual_seed(n)
    acc = torch.randint(-(2**31) + 1, 2**31 - 1, (20_000,), generator=generator, dtype=torch.int32)
    small = torch.randint(-(2**12), 2**12, (20_000,), generator=generator, dtype=torch.int32)
    for a in (acc, small):
        out = requantize(a, acc_fl=10 + n, out_fl=10, wl=wl, signed=signed)
        assert out.dtype == torch.int32
        np.testing.assert_array_equal(out.numpy(), reference(a.numpy(), n, wl, signed))


@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_ties_round_to_even(n):
    k = torch.arange(-300, 300, dtype=torch.int32)
    ties = k * 2**n + 2 ** (n - 1)  # exactly halfway between k and k + 1
    out = requantize(ties, n, 0, wl=16)
    expected = torch.where(k % 2 == 0, k, k + 1)
    assert torch.equal(out, expected)


def test_per_channel_shifts_broadcast():
    acc = torch.randint(-5000, 5000, (2, 3, 4, 4), dtype=torch.int32)
    acc_fl = torch.tensor([9, 10, 12]).view(3, 1, 1)
    out = requantize(acc, acc_fl, 6)
    for c, n in enumerate([3, 4, 6]):
        np.testing.assert_array_equal(out[:, c].numpy(), reference(acc[:, c].numpy(), n, 8, True))


def test_refuses_float_tensors():
    with pytest.raises(TypeError, match="integer tensors, got torch.float32"):
        requantize(torch.randn(4), 8, 4)
