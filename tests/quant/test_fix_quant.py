"""fix_quant: properties, a float64 reference, torch's fake quantization, the STE gradient."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from f8lab.quant import fix_quant, fraclen_range, int_range


def reference(x: np.ndarray, wl: int, fl: int, signed: bool) -> np.ndarray:
    """docs/method.md §1 in float64 numpy: np.rint rounds half to even."""
    qmin, qmax = int_range(wl, signed)
    return np.clip(np.rint(x * 2.0**fl), qmin, qmax) * 2.0**-fl


@st.composite
def formats(draw):
    wl = draw(st.integers(2, 16))
    signed = draw(st.booleans())
    fl = draw(st.integers(*fraclen_range(wl, signed)))
    return wl, fl, signed


values = st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), min_size=1, max_size=64)


@settings(max_examples=200, deadline=None)
@given(formats(), values)
def test_properties(fmt, xs):
    wl, fl, signed = fmt
    x = torch.tensor(xs, dtype=torch.float32)
    y = fix_quant(x, wl, fl, signed)
    qmin, qmax = int_range(wl, signed)
    q = y * 2**fl
    assert torch.equal(q, q.round()), "output on the grid 2^-FL"
    assert q.min() >= qmin and q.max() <= qmax, "output within range"
    assert torch.equal(fix_quant(y, wl, fl, signed), y), "idempotent"
    inside = (x * 2**fl >= qmin) & (x * 2**fl <= qmax)
    assert ((y - x).abs()[inside] <= 2.0 ** -(fl + 1)).all(), "error <= half a step inside"
    np.testing.assert_array_equal(y.double().numpy(), reference(x.double().numpy(), wl, fl, signed))


def test_rounds_half_to_even():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5]) * 2**-3
    assert fix_quant(x, 8, 3, True).mul(8).tolist() == [0, 2, 2, 0, -2, -2]


def test_signed_range_is_symmetric_and_unsigned_is_relu():
    x = torch.tensor([-1000.0, -1.0, 0.25, 1000.0])
    assert fix_quant(x, 8, 0, True).tolist() == [-127, -1, 0, 127]
    assert fix_quant(x, 8, 2, False).tolist() == [0, 0, 0.25, 255 / 4]


@pytest.mark.parametrize("wl,signed", [(8, True), (8, False), (4, True), (16, False)])
def test_matches_torch_fake_quantize_per_tensor(wl, signed):
    x = torch.randn(10_000) * 3
    qmin, qmax = int_range(wl, signed)
    low, high = fraclen_range(wl, signed)
    for fl in range(low, high + 1):  # every valid FL, FL_max included
        expected = torch.fake_quantize_per_tensor_affine(x, 2.0**-fl, 0, qmin, qmax)
        assert torch.equal(fix_quant(x, wl, fl, signed), expected)
        assert torch.equal(fix_quant(x, wl, torch.tensor(fl), signed), expected)


def test_matches_torch_fake_quantize_per_channel():
    x = torch.randn(6, 5, 3, 3) * 2
    fl = torch.tensor([0, 1, 3, 5, 7, 2])
    expected = torch.fake_quantize_per_channel_affine(
        x, 2.0 ** -fl.float(), torch.zeros(6, dtype=torch.int32), 0, -127, 127
    )
    assert torch.equal(fix_quant(x, 8, fl, True, dim=0), expected)
    for c in range(6):
        assert torch.equal(fix_quant(x, 8, fl, True, dim=0)[c], fix_quant(x[c], 8, int(fl[c]), True))


def test_per_channel_along_last_dim():
    x = torch.randn(4, 3)
    fl = torch.tensor([1, 4, 6])
    y = fix_quant(x, 8, fl, True, dim=-1)
    for c in range(3):
        assert torch.equal(y[:, c], fix_quant(x[:, c], 8, int(fl[c]), True))


def test_straight_through_gradient_counts_range_ends_inside():
    # q = round(x * 2^fl): -128 and 128 are clamped, -127 and 127 are the ends of the range
    x = torch.tensor([-128.0, -127.0, -3.0, 0.0, 126.6, 127.0, 127.4, 127.6, 128.0], requires_grad=True)
    fix_quant(x, 8, 0, True).backward(torch.arange(1.0, 10.0))
    assert x.grad.tolist() == [0, 2, 3, 4, 5, 6, 7, 0, 0]


def test_unsigned_gradient_is_zero_below_zero():
    x = torch.tensor([-1.0, -0.1, 0.0, 1.0, 300.0], requires_grad=True)
    fix_quant(x, 8, 0, False).sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 0]  # -0.1 rounds to q = 0: inside


def test_dtypes_are_kept():
    for dtype in (torch.float16, torch.float32, torch.float64):
        x = torch.randn(100, dtype=dtype)
        assert fix_quant(x, 8, 4, True).dtype == dtype


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda x: fix_quant(x, 1, 0, True), "word length 1 is out of range"),
        (lambda x: fix_quant(x, 17, 0, True), "word length 17 is out of range"),
        (lambda x: fix_quant(x, 8.0, 0, True), "word length must be an integer"),
        (
            lambda x: fix_quant(x, 8, 8, True),
            r"fractional length 8 is out of range for signed 8-bit \(0..7\)",
        ),
        (lambda x: fix_quant(x, 8, 9, False), r"out of range for unsigned 8-bit \(0..8\)"),
        (lambda x: fix_quant(x, 8, -1, True), "fractional length -1 is out of range"),
        (lambda x: fix_quant(x, 8, 6.5, True), "fractional length must be an integer, got 6.5"),
        (lambda x: fix_quant(x, 8, torch.tensor(6.5), True), "must be integers"),
        (lambda x: fix_quant(x, 8, torch.tensor([1, 2]), True), "pass the channel dim"),
        (lambda x: fix_quant(x, 8, torch.tensor([1, 2]), True, dim=0), "x has 4 channels"),
        (lambda x: fix_quant(x.long(), 8, 3, True), "floating-point tensor"),
    ],
)
def test_bad_input_is_refused_clearly(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(torch.randn(4, 2))
