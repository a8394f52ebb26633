"""The EMA tracker of activation fractional lengths."""

import pytest

from f8lab.quant import FraclenEMA


def test_update_rule_and_rounding():
    ema = FraclenEMA(wl=8, signed=False, init=6, momentum=0.1)
    assert int(ema.value()) == 6 and ema.updates.item() == 0
    ema.update(2)
    assert ema.fraclen.item() == pytest.approx(0.1 * 2 + 0.9 * 6)
    for _ in range(100):
        ema.update(3)
    assert int(ema.value()) == 3 and ema.updates.item() == 101


def test_rounding_is_half_to_even():
    ema = FraclenEMA()
    for value, expected in [(4.5, 4), (5.5, 6), (5.49, 5)]:
        ema.fraclen.fill_(value)
        assert int(ema.value()) == expected


def test_rounded_is_clamped_and_buffers_are_saved():
    ema = FraclenEMA(wl=4, signed=True, init=2)
    ema.fraclen.fill_(9.4)
    assert int(ema.value()) == 3
    state = ema.state_dict()
    assert set(state) == {"fraclen", "updates"}
    other = FraclenEMA(wl=4, signed=True, init=2)
    other.load_state_dict(state)
    assert int(other.value()) == 3


def test_bad_settings():
    with pytest.raises(ValueError, match="out of range"):
        FraclenEMA(wl=8, signed=True, init=8)
    with pytest.raises(ValueError, match="momentum"):
        FraclenEMA(momentum=0.0)
