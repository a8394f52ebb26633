"""Run configs: every shipped file loads in every profile; bad values fail clearly."""

from pathlib import Path

import pytest

from f8lab.settings import SettingError
from f8lab.train import ConfigError, load_config
from f8lab.train.config import PROFILES, RESUMABLE, OptimSection, config_from_dict

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_configs_are_shipped():
    names = {str(p.relative_to(REPO / "configs")) for p in CONFIGS}
    for model in ("resnet18", "mobilenet_v2"):
        assert {f"fashion_mnist/{model}_fp.yaml", f"fashion_mnist/{model}_f8.yaml"} <= names
    for model in ("resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2"):
        assert {f"imagenet/{model}_fp.yaml", f"imagenet/{model}_f8.yaml"} <= names
    assert "imagenet/resnet18_f8_tiny.yaml" in names and "imagenet/resnet50_f8_tiny.yaml" in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
@pytest.mark.parametrize("profile", PROFILES)
def test_shipped_configs_load(path, profile):
    config = load_config(path, profile)
    assert (config.quant is None and config.affine is None) == path.stem.endswith("_fp")
    assert (config.affine is not None) == path.stem.endswith("_torch_ao")


def test_imagenet_recipe_is_the_papers():
    config = load_config(REPO / "configs/imagenet/resnet18_f8.yaml", "imagenet")
    optim = config.optim
    assert (optim.epochs, optim.warmup_epochs, optim.momentum, optim.nesterov) == (150, 5, 0.9, True)
    assert optim.weight_decay == 4e-5 and optim.schedule == "cosine" and optim.label_smoothing == 0
    assert (config.quant.wl, config.quant.weight_fraclen, config.quant.input_fraclen) == (8, 7, 6)
    assert not config.data.normalize
    tiny = load_config(REPO / "configs/imagenet/resnet50_f8_tiny.yaml", "imagenet")
    assert tiny.optim.max_iters == 500 and tiny.quant.fraclen_method == "grid" and not tiny.quant.clipping
    assert tiny.run.init == "ptcv:resnet50b"  # the paper's ResNet-50 BL#1
    tiny18 = load_config(REPO / "configs/imagenet/resnet18_f8_tiny.yaml", "imagenet")
    assert tiny18.run.init == "ptcv:resnet18"


def test_profile_and_set_overrides(tmp_path):
    path = write(tmp_path, "optim: {epochs: 9}\nprofiles:\n  quick: {optim.epochs: 1}\n")
    assert load_config(path, "default").optim.epochs == 9
    assert load_config(path, "quick").optim.epochs == 1
    config = load_config(path, "quick", ["optim.epochs=3", "quant.wl=6", "data.root=/x"])
    assert config.optim.epochs == 3 and config.quant.wl == 6 and config.data.root == "/x"


@pytest.mark.parametrize(
    "text,overrides,message",
    [
        ("optim: {epoch: 3}\n", [], r"run.yaml: optim.epoch: unknown key; valid keys: lr, momentum"),
        ("optim: {epochs: three}\n", [], r"optim.epochs: expected int, got 'three'"),
        ("model: {name: vgg16}\n", [], r"model.name: 'vgg16' is not one of mobilenet_v1, mobilenet_v2"),
        ("data: {batch_size: 0}\n", [], r"data.batch_size: must be positive"),
        ("quant: {wl: 20}\n", [], r"run.yaml: quant.wl: must be a word length in 2..16, got 20"),
        (
            "quant: {fraclen_method: median}\n",
            [],
            r"quant.fraclen_method: 'median' is not one of std, mean, rms, grid, max, fixed",
        ),
        ("quant: {bits: 6}\n", [], r"run.yaml: quant.bits: this key is now quant.wl"),
        ("quant: {wl: 8}\n", ["quant.fraclen=grid"], r"quant.fraclen: this key is now quant.fraclen_method"),
        ("affine: {bits: 6}\n", [], r"affine.bits: this key is now affine.wl"),
        ("optim: {label_smoothing: 1.0}\n", [], r"optim.label_smoothing: must be below 1, got 1.0"),
        ("data: {workers: -1}\n", [], r"data.workers: must be zero or positive, got -1"),
        ("trainer: {}\n", [], r"unknown section 'trainer'"),
        ("profiles:\n  fast: {}\n", [], r"unknown profile 'fast'"),
        ("model: {name: resnet18}\n", ["epochs=3"], r"'epochs' is not section.key"),
        ("model: {name: resnet18}\n", ["optim.epochs"], r"expected section.key=value"),
    ],
)
def test_bad_configs_name_key_file_and_choices(tmp_path, text, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), "default", overrides)


def test_missing_file_and_profile(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        load_config(write(tmp_path, ""), "huge")


def test_a_saved_config_with_the_former_key_names_still_loads(tmp_path):
    """Checkpoints written before quant.bits became quant.wl (and quant.fraclen
    quant.fraclen_method, affine.bits affine.wl) keep their config readable."""
    saved = load_config(write(tmp_path, "quant: {wl: 6, fraclen_method: grid}\n"), "default").to_dict()
    saved["quant"]["bits"] = saved["quant"].pop("wl")
    saved["quant"]["fraclen"] = saved["quant"].pop("fraclen_method")
    config = config_from_dict(saved)
    assert (config.quant.wl, config.quant.fraclen_method) == (6, "grid")
    saved["quant"], saved["affine"] = None, {"bits": 4, "per_channel": False, "averaging": 0.01}
    assert config_from_dict(saved).affine.wl == 4


def test_sections_check_their_fields_where_they_are_declared():
    with pytest.raises(SettingError, match="lr: must be positive, got 0"):
        OptimSection(lr=0)
    assert OptimSection(lr=1).lr == 1.0 and isinstance(OptimSection(lr=1).lr, float)
    assert RESUMABLE >= {("optim", "epochs"), ("data", "root"), ("run", "device")}
    assert ("optim", "lr") not in RESUMABLE
