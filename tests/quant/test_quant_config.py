"""QuantConfig defaults and validation."""

import dataclasses

import pytest

from f8lab.quant import QuantConfig
from f8lab.settings import SettingError


def test_defaults_are_the_papers_setting():
    config = QuantConfig()
    assert (config.wl, config.weight_fraclen, config.input_fraclen) == (8, 7, 6)
    assert config.fraclen_method == "std" and not config.per_channel
    assert config.clipping and not config.floating
    assert config.ema_momentum == 0.1 and config.alpha_init == 8.0
    assert config.bn_fold == "batch" and config.residual == "int32"


def test_fraclen_defaults_follow_the_word_length():
    config = QuantConfig(wl=4)
    assert (config.weight_fraclen, config.input_fraclen) == (3, 2)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"wl": 1}, "wl: must be a word length in 2..16, got 1"),
        ({"wl": 8.5}, "wl: expected int, got 8.5"),
        ({"wl": 6, "weight_fraclen": 7}, "fractional length 7 is out of range for signed 6-bit"),
        (
            {"fraclen_method": "median"},
            "fraclen_method: 'median' is not one of std, mean, rms, grid, max, fixed",
        ),
        ({"coefficients": "paper"}, "published, derived"),
        ({"ema_momentum": 1.5}, r"ema_momentum: must be in \(0, 1\], got 1.5"),
        ({"alpha_init": 0}, "alpha_init: must be positive, got 0"),
        ({"residual": "int16"}, "residual: 'int16' is not one of int32, int8"),
        ({"per_channel": 1}, "per_channel: expected bool, got 1"),
    ],
)
def test_bad_values_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QuantConfig(**kwargs)


def test_a_field_error_is_a_setting_error_with_its_key():
    with pytest.raises(SettingError) as error:
        QuantConfig(bn_fold="both")
    assert error.value.key == "bn_fold"


def test_the_former_names_still_work_as_arguments_with_a_warning():
    with pytest.warns(DeprecationWarning, match=r"QuantConfig\(bits=...\) is now QuantConfig\(wl=...\)"):
        old = QuantConfig(bits=6, fraclen_method="grid")
    with pytest.warns(DeprecationWarning, match="fraclen_method"):
        assert QuantConfig(fraclen="grid", wl=6) == old
    assert (old.wl, old.fraclen_method) == (6, "grid")
    assert "bits" not in dataclasses.asdict(old)
    assert dataclasses.replace(old, residual="int8").wl == 6
