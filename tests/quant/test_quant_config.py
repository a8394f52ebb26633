"""QuantConfig defaults and validation."""

import pytest

from f8lab.quant import QuantConfig


def test_defaults_are_the_papers_setting():
    config = QuantConfig()
    assert (config.bits, config.weight_fraclen, config.input_fraclen) == (8, 7, 6)
    assert config.fraclen == "std" and not config.per_channel
    assert config.clipping and not config.floating
    assert config.ema_momentum == 0.1 and config.alpha_init == 8.0
    assert config.bn_fold == "batch" and config.residual == "int32"


def test_fraclen_defaults_follow_bits():
    config = QuantConfig(bits=4)
    assert (config.weight_fraclen, config.input_fraclen) == (3, 2)


@pytest.mark.parametrize("kwargs,message", [
    ({"bits": 1}, "word length 1"),
    ({"bits": 6, "weight_fraclen": 7}, "fractional length 7 is out of range for signed 6-bit"),
    ({"fraclen": "median"}, "choose one of std, mean, rms, grid, max, fixed"),
    ({"coefficients": "paper"}, "published, derived"),
    ({"ema_momentum": 1.5}, "ema_momentum"),
    ({"alpha_init": 0}, "alpha_init"),
    ({"residual": "int16"}, "choose one of int32, int8"),
])
def test_bad_values(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        QuantConfig(**kwargs)
