"""ResNet-18/50 and MobileNet V1/V2, float or fixed point, by name."""

from f8lab.models.describe import describe
from f8lab.models.hooks import forward_hooks
from f8lab.models.network import Arch, Network
from f8lab.models.registry import (
    arch_of,
    build_arch,
    build_model,
    from_float,
    is_fixed_point,
    list_models,
    load_float_state_dict,
    quant_of,
)

__all__ = [
    "Arch",
    "Network",
    "arch_of",
    "build_arch",
    "build_model",
    "describe",
    "forward_hooks",
    "from_float",
    "is_fixed_point",
    "list_models",
    "load_float_state_dict",
    "quant_of",
]
