"""PytorchCV's ImageNet models as f8lab float models: their state dicts under torchvision's names.

F8Net's tiny fine-tuning starts from PytorchCV's pretrained float models. Four of them are
f8lab's architectures with other parameter names: ``resnet18`` and ``resnet50b`` (the stride
on the 3x3 conv, as torchvision's ResNet-50) are ``resnet18`` and ``resnet50``,
``mobilenet_w1`` is ``mobilenet_v1`` and ``mobilenetv2b_w1`` (no expansion conv in the first
block, as torchvision's) is ``mobilenet_v2``. PytorchCV names its layers
``features.stage{s}.unit{u}.<layer>.{conv,bn}``; MobileNet V2's classifier is a 1x1 conv
without a bias, which becomes a linear layer with a zero bias.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

ARCHITECTURES = {
    "resnet18": "resnet18",
    "resnet50b": "resnet50",
    "mobilenet_w1": "mobilenet_v1",
    "mobilenetv2b_w1": "mobilenet_v2",
}
# a PytorchCV layer inside a unit -> the torchvision module path inside a block
RESNET_LAYERS = {
    "body.conv1.conv": "conv1",
    "body.conv1.bn": "bn1",
    "body.conv2.conv": "conv2",
    "body.conv2.bn": "bn2",
    "body.conv3.conv": "conv3",
    "body.conv3.bn": "bn3",
    "identity_conv.conv": "downsample.0",
    "identity_conv.bn": "downsample.1",
}
MOBILENET_V1_LAYERS = {"dw_conv.conv": "0.0", "dw_conv.bn": "0.1", "pw_conv.conv": "1.0", "pw_conv.bn": "1.1"}
UNIT = re.compile(
    r"features\.stage(\d+)\.unit(\d+)\.(.+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$"
)
END = re.compile(r"(.+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def _units(state: Mapping[str, torch.Tensor]) -> dict[tuple[int, int], int]:
    """Each (stage, unit) of a PytorchCV model and its place among all units, in order."""
    units: dict[tuple[int, int], int] = {}
    for key in state:
        match = UNIT.match(key)
        if match:
            units.setdefault((int(match[1]), int(match[2])), len(units))
    return units


def _mobilenet_v2_layer(layer: str, expands: bool) -> str:
    """A LinearBottleneck's layer -> its place in torchvision's InvertedResidual ``conv``."""
    first = 1 if expands else 0  # the depthwise block's index
    places = {
        "conv1.conv": "0.0",
        "conv1.bn": "0.1",
        "conv2.conv": f"{first}.0",
        "conv2.bn": f"{first}.1",
        "conv3.conv": f"{first + 1}",
        "conv3.bn": f"{first + 2}",
    }
    return places[layer]


def _renamed(name: str, key: str, units: dict[tuple[int, int], int], expands: set[int]) -> str:
    match = UNIT.match(key)
    if match:
        stage, unit, layer, tensor = int(match[1]), int(match[2]), match[3], match[4]
        if name.startswith("resnet"):
            return f"layer{stage}.{unit - 1}.{RESNET_LAYERS[layer]}.{tensor}"
        block = units[stage, unit] + 1  # features.0 is the stem
        if name == "mobilenet_w1":
            return f"features.{block}.{MOBILENET_V1_LAYERS[layer]}.{tensor}"
        return f"features.{block}.conv.{_mobilenet_v2_layer(layer, block in expands)}.{tensor}"
    module, tensor = END.match(key).groups()  # type: ignore[union-attr]  # every key ends so
    stems = {"features.init_block.conv.conv": "conv1", "features.init_block.conv.bn": "bn1"}
    if not name.startswith("resnet"):
        stems = {
            "features.init_block.conv": "features.0.0",
            "features.init_block.bn": "features.0.1",
            "features.final_block.conv": f"features.{len(units) + 1}.0",
            "features.final_block.bn": f"features.{len(units) + 1}.1",
        }
    classifier = {"resnet": "fc", "mobilenet_w1": "fc", "mobilenetv2b_w1": "classifier.1"}
    stems["output"] = classifier["resnet" if name.startswith("resnet") else name]
    if module not in stems:
        raise KeyError(key)
    return f"{stems[module]}.{tensor}"


def _check_name(name: str) -> None:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown PytorchCV model {name!r}; f8lab maps {', '.join(ARCHITECTURES)}")


def from_pytorchcv(name: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A PytorchCV model's state dict (``name``: one of ARCHITECTURES) with the names of the
    f8lab float model ``ARCHITECTURES[name]``; refused, naming the key, if it is not one."""
    _check_name(name)
    units = _units(state)
    expands = {units[s, u] + 1 for s, u in units if f"features.stage{s}.unit{u}.conv1.conv.weight" in state}
    out = {}
    for key, value in state.items():
        try:
            out[_renamed(name, key, units, expands)] = value
        except KeyError:
            raise ValueError(f"{key} is not a layer of PytorchCV's {name}: is this its state dict?") from None
    if name == "mobilenetv2b_w1":  # a 1x1 conv without bias -> a linear layer with a zero bias
        weight = out["classifier.1.weight"]
        out["classifier.1.weight"] = weight.flatten(1)
        out["classifier.1.bias"] = weight.new_zeros(weight.shape[0])
    return out


def pytorchcv_weights(name: str) -> dict[str, torch.Tensor]:
    """PytorchCV's pretrained ImageNet weights of ``name`` under torchvision's names (needs
    the ``pytorchcv`` package and, the first time, internet: PytorchCV downloads them)."""
    _check_name(name)
    try:
        from pytorchcv.model_provider import get_model
    except ImportError:
        raise ImportError("ptcv: weights need the pytorchcv package: pip install pytorchcv") from None
    return from_pytorchcv(name, get_model(name, pretrained=True).state_dict())
