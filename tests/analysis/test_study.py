"""Study: the notebooks' shared set-up."""

import dataclasses
import json
from pathlib import Path

import pytest

from f8lab.analysis import Study
from f8lab.analysis.study import STUDY_PROFILES
from f8lab.train.config import PROFILES

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "fashion_mnist"


def test_start_makes_the_folders_and_checks_the_profile(tmp_path):
    study = Study.start("quick", tmp_path / "results", CONFIGS)
    assert study.figures.is_dir() and study.figures == tmp_path / "results" / "figures"
    assert study.size({"quick": {"images": 16}, "default": {"images": 256}}) == {"images": 16}
    with pytest.raises(ValueError, match="no sizes for profile 'quick'"):
        study.size({"default": {}})
    with pytest.raises(ValueError, match=r"PROFILE 'imagenet' is not one of \['quick', 'default'\]"):
        Study.start("imagenet", tmp_path)
    assert set(STUDY_PROFILES) <= set(PROFILES)


def test_configs_runs_and_records(tmp_path):
    study = Study.start("quick", tmp_path, CONFIGS)
    config = study.config("resnet18_f8", study.float_init, "run.seed=3")
    assert config.run.init == str(tmp_path / "resnet18_fp" / "best.pt") and config.run.seed == 3
    assert config.optim.epochs == 1  # the quick profile's
    record = study.write_record("00_test", {"top1": 1.5})
    assert json.loads((tmp_path / "00_test.json").read_text()) == record


def test_a_quick_runs_finding_stands_beside_the_default_runs(tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "04_training.json").write_text(
        json.dumps({"f8_top1": 91.234, "ablations": {"4-bit": 67.5}})
    )
    quick = dataclasses.replace(
        Study.start("quick", tmp_path / "quick", CONFIGS), default_records=tmp_path / "records"
    )
    assert quick.finding(64.3, "04_training", "f8_top1") == "64.30 (quick run; the default run: 91.23)"
    assert quick.finding(60, "04_training", "ablations", "4-bit", fmt="{:.1f}") == (
        "60.0 (quick run; the default run: 67.5)"
    )
    assert quick.finding(1, "04_training", "ablations", "6-bit") == (
        "1.00 (quick run; no default-run figure recorded)"
    )
    assert quick.finding(1, "06_integer_export", "x").endswith("no default-run figure recorded)")
    default = dataclasses.replace(quick, profile="default")
    assert default.finding(91.234, "04_training", "f8_top1") == "91.23"
