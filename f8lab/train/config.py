"""Run configurations: YAML files of values, read into validated dataclasses.

A config file has the sections ``model``, ``data``, ``optim``, ``quant`` (F8Net's fixed
point; null for a float run), ``affine`` (torch.ao's affine QAT instead; null or absent
otherwise) and ``run``, plus ``profiles``: per-profile overrides written as dotted keys
(``optim.epochs: 1``). ``--set section.key=value`` overrides come last. Every key is
checked: an unknown key, a wrong type or an impossible value is an error that names the
key, the file and the valid choices, before any work starts.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from f8lab.baselines import AffineConfig
from f8lab.models.network import STEMS
from f8lab.models.registry import BUILDERS
from f8lab.quant import QuantConfig
from f8lab.settings import (
    SettingError,
    below_one,
    check_settings,
    non_negative,
    positive,
    renamed_to,
    resumable_keys,
    setting,
    upgraded,
)

PROFILES = ("quick", "default", "imagenet")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and the file."""


@dataclass
class ModelSection:
    name: str = setting("resnet18", choices=tuple(sorted(BUILDERS)))  # f8lab.models.list_models()
    stem: str = setting("small", choices=STEMS)  # "imagenet" (224x224) or "small" (28x28, 32x32)
    width: float = setting(1.0, check=positive)  # width multiplier
    num_classes: int = setting(10, check=positive)
    in_channels: int = setting(1, check=positive)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class DataSection:
    dataset: str = setting("fashion_mnist", choices=("fashion_mnist", "imagenet", "synthetic"))
    root: str | None = setting(None, resumable=True)  # None: f8lab's default (F8LAB_DATA or data/)
    batch_size: int = setting(128, check=positive)  # per process
    augment: bool = True  # random crop + flip (Fashion-MNIST), RandomResizedCrop (ImageNet)
    normalize: bool = False  # ImageNet mean/std normalisation instead of round(255x)/256
    train_limit: int | None = setting(None, check=positive)  # only the first N training images
    test_limit: int | None = setting(None, check=positive)  # only the first N test images
    workers: int = setting(4, check=non_negative, resumable=True)  # DataLoader workers (ImageNet)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class OptimSection:
    lr: float = setting(0.1, check=positive)  # learning rate for batch 256, scaled by total batch / 256
    momentum: float = setting(0.9, check=non_negative)
    nesterov: bool = True
    weight_decay: float = setting(4e-5, check=non_negative)
    weight_decay_on: str = setting("all", choices=("all", "no_bn", "no_bn_depthwise"))
    # epochs and max_iters may grow when a run is resumed
    epochs: int = setting(10, check=positive, resumable=True)
    warmup_epochs: float = setting(0.0, check=non_negative)  # linear warm-up, then the schedule
    schedule: str = setting("cosine", choices=("cosine", "constant"))  # cosine: per iteration
    label_smoothing: float = setting(0.0, check=below_one)
    # stop after this many iterations (tiny fine-tuning)
    max_iters: int | None = setting(None, check=positive, resumable=True)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class RunSection:
    seed: int = setting(0, check=non_negative)
    # float checkpoint a fixed-point run starts from, "torchvision:<name>" for torchvision's
    # pretrained weights or "ptcv:<name>" for PytorchCV's (a resumed run reads last.pt)
    init: str | None = setting(None, resumable=True)
    # iterations between checkpoints inside an epoch
    checkpoint_every: int = setting(200, check=positive, resumable=True)
    device: str = setting("auto", choices=("auto", "cpu", "cuda"), resumable=True)
    # iterations between reads of the loss (progress bar, NaN check)
    log_every: int = setting(50, check=positive, resumable=True)
    compile: bool = setting(False, resumable=True)  # put the model through torch.compile
    # "auto" (channels_last on the CPU, contiguous on CUDA), "channels_last" or "contiguous"
    memory_format: str = setting("auto", choices=("auto", "channels_last", "contiguous"), resumable=True)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class RunConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    quant: QuantConfig | None = None
    run: RunSection = field(default_factory=RunSection)
    affine: AffineConfig | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {
    "model": ModelSection,
    "data": DataSection,
    "optim": OptimSection,
    "quant": QuantConfig,
    "run": RunSection,
    "affine": AffineConfig,
}
NULLABLE = ("quant", "affine")  # sections that may be null: a float run has neither
# what may differ between a run and its resumption
RESUMABLE = {(name, key) for name, cls in SECTIONS.items() for key in resumable_keys(cls)}


def _build_section(name: str, values: dict, source: str):
    cls = SECTIONS[name]
    valid = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        where = f"{source}: {name}.{key}"
        if renamed_to(cls, key):
            raise ConfigError(f"{where}: this key is now {name}.{renamed_to(cls, key)}")
        if key not in valid:
            raise ConfigError(f"{where}: unknown key; valid keys: {', '.join(valid)}")
    try:
        return cls(**values)
    except SettingError as error:
        raise ConfigError(f"{source}: {name}.{error.key}: {error.problem}") from None
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{source}: {name}: {error}") from None


def _read_yaml(text: str, source: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(
            f"{source}: not valid YAML ({problem}{where}); quote values that hold ':', '{{' or '['"
        ) from None


def _apply(tree: dict, dotted: str, value, source: str) -> None:
    section, _, key = dotted.partition(".")
    if section not in SECTIONS or not key:
        raise ConfigError(f"{source}: {dotted!r} is not section.key; sections: {', '.join(SECTIONS)}")
    if tree.get(section) is None:
        tree[section] = {}
    tree[section][key] = value


def _apply_overrides(tree: dict, overrides: Sequence[str], only: str | None = None) -> None:
    """``--set section.key=value`` strings (values in YAML syntax) into ``tree``; ``only``: the
    one section they may name."""
    for item in overrides:
        dotted, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        if only is not None and dotted.strip().partition(".")[0] != only:
            raise ConfigError(
                f"--set {item}: only {only}.* keys can be set here; the checkpoint fixes the rest of its run"
            )
        text = text.strip()
        value = _read_yaml(text, f"--set {item}") if text else None
        _apply(tree, dotted.strip(), value, f"--set {item}")


def with_data_overrides(config: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """``config`` with ``--set data.key=value`` overrides (where a checkpoint made on another
    machine finds its data here); other sections are refused."""
    tree = config.to_dict()
    _apply_overrides(tree, overrides, only="data")
    return dataclasses.replace(config, data=_build_section("data", tree["data"], "--set"))


def load_config(path: str | Path, profile: str = "default", overrides: Sequence[str] = ()) -> RunConfig:
    """Read a YAML config, apply a profile's overrides and ``key=value`` overrides, validate.

    Args:
        path: the YAML file.
        profile: "quick", "default" or "imagenet"; the file's ``profiles`` section may
            override values for it.
        overrides: ``section.key=value`` strings (values in YAML syntax).
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(
            f"config file {path} {what}; give a YAML file such as configs/fashion_mnist/resnet18_fp.yaml"
        )
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    raw = _read_yaml(path.read_text(), str(path))
    if raw is None:
        raise ConfigError(
            f"{path} is empty: a config names at least its model and data (see configs/fashion_mnist/)"
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections")
    tree = copy.deepcopy({k: v for k, v in raw.items() if k != "profiles"})
    for section in tree:
        if section not in SECTIONS:
            raise ConfigError(f"{path}: unknown section {section!r}; valid: {', '.join(SECTIONS)}")
    profiles = raw.get("profiles") or {}
    for name in profiles:
        if name not in PROFILES:
            raise ConfigError(f"{path}: unknown profile {name!r}; valid: {', '.join(PROFILES)}")
    for dotted, value in (profiles.get(profile) or {}).items():
        _apply(tree, dotted, value, f"{path} (profile {profile})")
    _apply_overrides(tree, overrides)
    sections: dict[str, Any] = {}
    for name in SECTIONS:
        values = tree.get(name)
        if name in NULLABLE and values is None:
            sections[name] = None
            continue
        if not isinstance(values or {}, dict):
            raise ConfigError(f"{path}: section {name} must be a mapping, got {values!r}")
        sections[name] = _build_section(name, values or {}, str(path))
    return _one_scheme(RunConfig(**sections), str(path))


def _one_scheme(config: RunConfig, source: str) -> RunConfig:
    if config.quant is not None and config.affine is not None:
        raise ConfigError(
            f"{source}: quant and affine are both set; a run is F8Net's fixed "
            "point (quant) or torch.ao's affine QAT (affine): set the other to null"
        )
    return config


def config_from_dict(tree: dict) -> RunConfig:
    """Rebuild a RunConfig saved in a checkpoint by ``RunConfig.to_dict`` (a checkpoint
    written before the ``affine`` section existed has none; keys renamed since are renamed)."""
    sections: dict[str, Any] = {
        name: None
        if name in NULLABLE and values is None
        else _build_section(name, upgraded(SECTIONS[name], values), "checkpoint")
        for name, values in tree.items()
    }
    return _one_scheme(RunConfig(**sections), "checkpoint")


def resumed_config(saved: dict, given: RunConfig, where: str) -> RunConfig:
    """The config a resumed run continues with: ``given``, when it differs from the
    ``saved`` one only in what may change (``RESUMABLE``); else a ConfigError naming every
    differing key."""
    old, new = config_from_dict(saved).to_dict(), given.to_dict()
    refused = []
    for section in SECTIONS:
        if (old[section] is None) != (new[section] is None):
            refused.append(
                f"{section} {'null' if old[section] is None else 'set'} -> "
                f"{'null' if new[section] is None else 'set'}"
            )
            continue
        for key, value in (old[section] or {}).items():
            if new[section][key] == value:
                continue
            shrinks = key in ("epochs", "max_iters") and (new[section][key] or math.inf) < (value or math.inf)
            if (section, key) not in RESUMABLE or shrinks:
                refused.append(f"{section}.{key} {value!r} -> {new[section][key]!r}")
    if refused:
        allowed = ", ".join(f"{s}.{k}" for s, k in sorted(RESUMABLE))
        raise ConfigError(
            f"--resume: {where} was trained with another config ({'; '.join(refused)}). "
            f"Resume with the run's config and profile (only {allowed} may change; epochs "
            "and max_iters only upward), or start a new run with --overwrite or another --out"
        )
    return given
