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
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from f8lab.baselines import AffineConfig
from f8lab.models.network import STEMS
from f8lab.models.registry import BUILDERS
from f8lab.quant import QuantConfig

PROFILES = ("quick", "default", "imagenet")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and the file."""


@dataclass
class ModelSection:
    name: str = "resnet18"        # one of f8lab.models.list_models()
    stem: str = "small"           # "imagenet" (224x224) or "small" (28x28, 32x32)
    width: float = 1.0            # width multiplier
    num_classes: int = 10
    in_channels: int = 1


@dataclass
class DataSection:
    dataset: str = "fashion_mnist"  # "fashion_mnist", "imagenet" or "synthetic"
    root: str | None = None         # data root; None: f8lab's default (F8LAB_DATA or data/)
    batch_size: int = 128           # per process
    augment: bool = True            # random crop + flip (Fashion-MNIST), RandomResizedCrop (ImageNet)
    normalize: bool = False         # ImageNet mean/std normalisation instead of round(255x)/256
    train_limit: int | None = None  # use only the first N training images (quick runs)
    test_limit: int | None = None   # use only the first N test images
    workers: int = 4                # DataLoader workers for ImageNet folders


@dataclass
class OptimSection:
    lr: float = 0.1                 # learning rate for batch 256, scaled by total batch / 256
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    weight_decay_on: str = "all"    # "all", "no_bn" or "no_bn_depthwise"
    epochs: int = 10
    warmup_epochs: float = 0.0      # linear warm-up, then the schedule
    schedule: str = "cosine"        # "cosine" (per iteration) or "constant"
    label_smoothing: float = 0.0
    max_iters: int | None = None    # stop after this many iterations (tiny fine-tuning)


@dataclass
class RunSection:
    seed: int = 0
    init: str | None = None         # float checkpoint a fixed-point run starts from, or
                                    # "torchvision:<name>" for torchvision's pretrained weights
    checkpoint_every: int = 200     # iterations between checkpoints inside an epoch
    device: str = "auto"            # "auto", "cpu" or "cuda"
    log_every: int = 50             # iterations between reads of the loss (progress bar, NaN check)
    compile: bool = False           # put the model through torch.compile
    memory_format: str = "auto"     # "auto" (channels_last on the CPU, contiguous on CUDA),
                                    # "channels_last" or "contiguous"


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


CHOICES = {
    ("model", "name"): tuple(sorted(BUILDERS)),
    ("model", "stem"): STEMS,
    ("data", "dataset"): ("fashion_mnist", "imagenet", "synthetic"),
    ("optim", "weight_decay_on"): ("all", "no_bn", "no_bn_depthwise"),
    ("optim", "schedule"): ("cosine", "constant"),
    ("run", "device"): ("auto", "cpu", "cuda"),
    ("run", "memory_format"): ("auto", "channels_last", "contiguous"),
}
POSITIVE = {("model", "width"), ("model", "num_classes"), ("model", "in_channels"),
            ("data", "batch_size"), ("data", "train_limit"), ("data", "test_limit"),
            ("optim", "lr"), ("optim", "epochs"), ("optim", "max_iters"),
            ("run", "checkpoint_every"), ("run", "log_every")}
NON_NEGATIVE = {("optim", "momentum"), ("optim", "weight_decay"), ("optim", "warmup_epochs"),
                ("data", "workers"), ("run", "seed")}
BELOW_ONE = {("optim", "label_smoothing")}  # in [0, 1)
# what may differ between a run and its resumption (init: the weights come from last.pt);
# epochs and max_iters may only grow
RESUMABLE = {("optim", "epochs"), ("optim", "max_iters"), ("run", "init"),
             ("run", "checkpoint_every"), ("run", "log_every"), ("run", "device"),
             ("run", "compile"), ("run", "memory_format"), ("data", "root"), ("data", "workers")}
SECTIONS = {"model": ModelSection, "data": DataSection, "optim": OptimSection,
            "quant": QuantConfig, "run": RunSection, "affine": AffineConfig}
NULLABLE = ("quant", "affine")  # sections that may be null: a float run has neither


def _check_type(value, annotation, where: str):
    """Check ``value`` against a field's annotation; ints are accepted for floats."""
    options = annotation if isinstance(annotation, tuple) else (annotation,)
    for option in options:
        if option is type(None) and value is None:
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{where}: must be a finite number, got {value!r}")
            return float(value)
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option in (str, bool) and type(value) is option:
            return value
    names = " or ".join("null" if o is type(None) else o.__name__ for o in options)
    raise ConfigError(f"{where}: expected {names}, got {value!r}")


def _field_types(cls) -> dict[str, tuple]:
    hints = typing.get_type_hints(cls)
    types_ = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) or \
            typing.get_origin(hint) is typing.Union else (hint,)
        types_[f.name] = args
    return types_


def _build_section(name: str, values: dict, source: str):
    cls = SECTIONS[name]
    valid = _field_types(cls)
    clean = {}
    for key, value in values.items():
        where = f"{source}: {name}.{key}"
        if key not in valid:
            raise ConfigError(f"{where}: unknown key; valid keys: {', '.join(valid)}")
        value = _check_type(value, valid[key], where)
        choices = CHOICES.get((name, key))
        if choices and value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}")
        if value is not None and (name, key) in POSITIVE and not value > 0:
            raise ConfigError(f"{where}: must be positive, got {value!r}")
        if (name, key) in NON_NEGATIVE | BELOW_ONE and not value >= 0:
            raise ConfigError(f"{where}: must be zero or positive, got {value!r}")
        if (name, key) in BELOW_ONE and not value < 1:
            raise ConfigError(f"{where}: must be below 1, got {value!r}")
        clean[key] = value
    try:
        return cls(**clean)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{source}: {name}: {error}") from None


def _read_yaml(text: str, source: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(f"{source}: not valid YAML ({problem}{where}); quote values that "
                          "hold ':', '{' or '['") from None


def _apply(tree: dict, dotted: str, value, source: str) -> None:
    section, _, key = dotted.partition(".")
    if section not in SECTIONS or not key:
        raise ConfigError(
            f"{source}: {dotted!r} is not section.key; sections: {', '.join(SECTIONS)}"
        )
    if tree.get(section) is None:
        tree[section] = {}
    tree[section][key] = value


def load_config(path: str | Path, profile: str = "default",
                overrides: Sequence[str] = ()) -> RunConfig:
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
        raise ConfigError(f"config file {path} {what}; give a YAML file such as "
                          "configs/fashion_mnist/resnet18_fp.yaml")
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    raw = _read_yaml(path.read_text(), str(path))
    if raw is None:
        raise ConfigError(f"{path} is empty: a config names at least its model and data "
                          "(see configs/fashion_mnist/)")
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
    for item in overrides:
        dotted, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        text = text.strip()
        value = _read_yaml(text, f"--set {item}") if text else None
        _apply(tree, dotted.strip(), value, f"--set {item}")
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
        raise ConfigError(f"{source}: quant and affine are both set; a run is F8Net's fixed "
                          "point (quant) or torch.ao's affine QAT (affine): set the other to null")
    return config


def config_from_dict(tree: dict) -> RunConfig:
    """Rebuild a RunConfig saved in a checkpoint by ``RunConfig.to_dict`` (a checkpoint
    written before the ``affine`` section existed has none)."""
    sections: dict[str, Any] = {name: None if name in NULLABLE and values is None
                                else _build_section(name, values, "checkpoint")
                                for name, values in tree.items()}
    return _one_scheme(RunConfig(**sections), "checkpoint")


def resumed_config(saved: dict, given: RunConfig, where: str) -> RunConfig:
    """The config a resumed run continues with: ``given``, when it differs from the
    ``saved`` one only in what may change (``RESUMABLE``); else a ConfigError naming every
    differing key."""
    old, new = config_from_dict(saved).to_dict(), given.to_dict()
    refused = []
    for section in SECTIONS:
        if (old[section] is None) != (new[section] is None):
            refused.append(f"{section} {'null' if old[section] is None else 'set'} -> "
                           f"{'null' if new[section] is None else 'set'}")
            continue
        for key, value in (old[section] or {}).items():
            if new[section][key] == value:
                continue
            shrinks = key in ("epochs", "max_iters") and (new[section][key] or math.inf) < \
                (value or math.inf)
            if (section, key) not in RESUMABLE or shrinks:
                refused.append(f"{section}.{key} {value!r} -> {new[section][key]!r}")
    if refused:
        allowed = ", ".join(f"{s}.{k}" for s, k in sorted(RESUMABLE))
        raise ConfigError(
            f"--resume: {where} was trained with another config ({'; '.join(refused)}). "
            f"Resume with the run's config and profile (only {allowed} may change; epochs "
            "and max_iters only upward), or start a new run with --overwrite or another --out")
    return given
