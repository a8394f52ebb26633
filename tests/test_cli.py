"""The f8lab command: help, train + eval on synthetic data, clear errors."""

import json
import subprocess
import sys

import pytest

from f8lab.cli import main
from helpers import TINY_CONFIG


def test_help_of_each_command(capsys):
    run = subprocess.run([sys.executable, "-m", "f8lab", "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and all(c in run.stdout for c in ("train", "eval", "export"))
    for command, words in (
        ("train", ["--profile", "--set", "--resume", "--init"]),
        ("eval", ["--mode", "integer", "onnx"]),
        ("export", ["--format"]),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert all(word in text for word in words), command


def test_train_then_eval_prints_json_last(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(TINY_CONFIG)
    main(["train", str(config), "--out", str(tmp_path / "fp")])
    main(
        [
            "train",
            str(config),
            "--out",
            str(tmp_path / "f8"),
            "--set",
            "quant.wl=8",
            "--init",
            str(tmp_path / "fp" / "best.pt"),
        ]
    )
    capsys.readouterr()
    main(["eval", str(tmp_path / "f8" / "best.pt")])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["mode"] == "fake" and result["n"] == 32 and 0 <= result["top1"] <= 100
    main(["eval", str(tmp_path / "f8" / "best.pt"), "--mode", "integer"])
    integer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert integer["mode"] == "integer" and integer["top1"] == result["top1"]
    main(["eval", str(tmp_path / "fp" / "best.pt"), "--mode", "float"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["mode"] == "float"
    main(["export", str(tmp_path / "f8" / "best.pt"), "--out", str(tmp_path / "m.onnx")])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["format"] == "onnx-int8"
    main(["eval", str(tmp_path / "m.onnx")])
    onnx_result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert onnx_result["mode"] == "onnx" and onnx_result["top1"] == integer["top1"]
    main(["eval", str(tmp_path / "f8" / "best.pt"), "--mode", "onnx"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["top1"] == integer["top1"]
    main(["export", str(tmp_path / "f8" / "best.pt"), "--weights", "u8", "--out", str(tmp_path / "u8.onnx")])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["weights"] == "u8"
    main(["eval", str(tmp_path / "u8.onnx")])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["top1"] == integer["top1"]


def test_bad_config_fails_before_any_work(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(TINY_CONFIG.replace("epochs: 1", "epochs: 1, moment: 0.9"))
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(config), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "optim.moment: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_eval_mode_must_fit_the_checkpoint(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(TINY_CONFIG)
    main(["train", str(config), "--out", str(tmp_path / "fp")])
    for mode in ("fake", "integer"):
        with pytest.raises(SystemExit) as exit_info:
            main(["eval", str(tmp_path / "fp" / "last.pt"), "--mode", mode])
        assert exit_info.value.code == 2
        assert f"float checkpoint; --mode {mode} needs a fixed-point one" in capsys.readouterr().err
    main(["eval", str(tmp_path / "fp" / "last.pt"), "--mode", "onnx"])  # the float network


def test_eval_and_export_take_data_settings_for_a_checkpoint_made_elsewhere(tmp_path, capsys):
    """A checkpoint records its run's data settings; --set data.* points them at this
    machine's copy (here: a smaller test set, which the synthetic data can show)."""
    config = tmp_path / "run.yaml"
    config.write_text(TINY_CONFIG)
    main(["train", str(config), "--out", str(tmp_path / "fp")])
    capsys.readouterr()
    checkpoint = str(tmp_path / "fp" / "best.pt")
    main(["eval", checkpoint, "--set", "data.test_limit=8", "--set", "data.root=/elsewhere"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 8
    main(
        [
            "export",
            checkpoint,
            "--format",
            "onnx-float",
            "--set",
            "data.test_limit=16",
            "--out",
            str(tmp_path / "f.onnx"),
        ]
    )
    main(["eval", str(tmp_path / "f.onnx")])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 16
    for wrong, message in (
        ("model.width=0.5", "only data.* keys can be set here"),
        ("data.test_limit=0", "data.test_limit: must be positive, got 0"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["eval", checkpoint, "--set", wrong])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
