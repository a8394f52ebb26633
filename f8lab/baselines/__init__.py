"""Baselines the fixed-point method is compared with, trained by the same trainer."""

from f8lab.baselines.torch_ao import (
    AffineConfig,
    AffineQAT,
    Int8Network,
    affine_config_of,
    convert_to_int8,
    prepare_affine_qat,
)

__all__ = [
    "AffineConfig",
    "AffineQAT",
    "Int8Network",
    "affine_config_of",
    "convert_to_int8",
    "prepare_affine_qat",
]
