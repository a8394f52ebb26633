"""Bad input, clumsy use and damaged files: each is refused with exit code 2 (1 for a run
whose loss went non-finite) and an ``error:`` line that names the file or key and the fix,
before any damaged value reaches a model or any run is replaced."""

import importlib
import os
import pickle
import random
import shutil
import subprocess
import sys

import pytest
import torch

import f8lab.cli
from f8lab.cli import main
from f8lab.data import default_data_root
from f8lab.data.fashion_mnist import FILES, STAMP, raw_folder
from f8lab.models import build_model
from f8lab.quant import QuantConfig, fix_quant, requantize
from f8lab.train import read_checkpoint, save_atomic
from f8lab.train.checkpoint import CheckpointError, load_tensors, model_state
from f8lab.train.config import load_config
from f8lab.train.run_folder import claim_run_folder, holds_run
from helpers import TINY_CONFIG

installed = pytest.mark.skipif(
    not (raw_folder(default_data_root()) / FILES[0].name).is_file(),
    reason="Fashion-MNIST not installed: run `make data`",
)


def refused(capsys, argv: list[str], code: int = 2) -> str:
    """Run the command, expect it to exit with ``code``; return its error line(s)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == code, capsys.readouterr()
    err = capsys.readouterr().err.rsplit("\r", 1)[-1]  # what a terminal shows after a bar
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(TINY_CONFIG)
    return path


@pytest.fixture
def finished_run(tmp_path, config_file):
    """A float run trained into tmp_path/run."""
    main(["train", str(config_file), "--out", str(tmp_path / "run")])
    return tmp_path / "run"


# ---------------------------------------------------------------- data sets


def _fashion_checkpoint(path):
    """A float checkpoint whose run evaluates on Fashion-MNIST from the default root."""
    model = build_model("resnet18", 10, stem="small", in_channels=1, width=0.125)
    config = load_config(
        _write(path.parent / "fm.yaml", TINY_CONFIG),
        "quick",
        ["data.dataset=fashion_mnist", "data.test_limit=null"],
    )
    save_atomic({**model_state(model), "config": config.to_dict()}, path)
    return path


def _write(path, text):
    path.write_text(text)
    return path


def _zero_labels(data: bytearray) -> None:
    data[8:] = bytes(len(data) - 8)


def _overwrite_100k(data: bytearray) -> None:
    data[100_000:200_000] = bytes(100_000)


def _truncate(data: bytearray) -> None:
    del data[len(data) // 2 :]


def _recount(data: bytearray) -> None:
    data[4:8] = (9_000).to_bytes(4, "big")


@installed
@pytest.mark.parametrize(
    "name,damage",
    [
        ("t10k-labels-idx1-ubyte", _zero_labels),
        ("t10k-images-idx3-ubyte", _overwrite_100k),
        ("t10k-images-idx3-ubyte", _truncate),
        ("t10k-images-idx3-ubyte", _recount),
    ],
)
def test_damaged_data_is_refused_before_it_reaches_a_model(tmp_path, monkeypatch, capsys, name, damage):
    copy = raw_folder(tmp_path / "copy")
    copy.mkdir(parents=True)
    for spec in FILES[2:]:  # the test split, which eval reads
        shutil.copy(raw_folder(default_data_root()) / spec.name, copy)
    data = bytearray((copy / name).read_bytes())
    damage(data)
    (copy / name).write_bytes(bytes(data))
    checkpoint = _fashion_checkpoint(tmp_path / "fm.pt")
    monkeypatch.setenv("F8LAB_DATA", str(tmp_path / "copy"))
    monkeypatch.setattr(f8lab.cli, "evaluate", lambda *a, **k: pytest.fail("a model ran"))
    err = refused(capsys, ["eval", str(checkpoint)])
    assert name in err and "get_fashion_mnist.py" in err and "not used" in err
    assert any(word in err for word in ("MD5", "bytes", "header"))


@installed
def test_a_verified_file_is_hashed_again_only_when_it_changes(tmp_path, monkeypatch):
    from f8lab.data import fashion_mnist

    module = importlib.import_module("f8lab.data.fashion_mnist")
    copy = raw_folder(tmp_path)
    copy.mkdir(parents=True)
    for spec in FILES:
        shutil.copy(raw_folder(default_data_root()) / spec.name, copy)
    assert len(fashion_mnist(False, tmp_path)) == 10_000
    assert (copy / STAMP).is_file()
    checked = []
    real_check = module.check_idx_bytes
    monkeypatch.setattr(
        module,
        "check_idx_bytes",
        lambda data, spec, origin: checked.append(spec.name) or real_check(data, spec, origin),
    )
    fashion_mnist(False, tmp_path)
    assert checked == []  # unchanged since verified: not read twice
    labels = copy / FILES[3].name
    changed = labels.stat().st_mtime_ns + 1_000_000_000
    os.utime(labels, ns=(changed, changed))
    fashion_mnist(False, tmp_path)
    assert checked == [FILES[3].name]


# ---------------------------------------------------------------- run folders


def test_a_folder_that_holds_a_run_is_not_replaced(tmp_path, capsys, config_file, finished_run):
    before = (finished_run / "best.pt").read_bytes()
    err = refused(capsys, ["train", str(config_file), "--out", str(finished_run), "--set", "optim.lr=0.5"])
    assert "holds a run" in err and "--resume" in err and "--overwrite" in err
    assert (finished_run / "best.pt").read_bytes() == before
    main(["train", str(config_file), "--out", str(finished_run), "--set", "optim.lr=0.5", "--overwrite"])
    assert read_checkpoint(finished_run / "best.pt")["config"]["optim"]["lr"] == 0.5


def test_two_runs_on_one_folder(tmp_path, capsys, config_file):
    """A second run on a folder that another process is writing to stops with an error."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from f8lab.train.run_folder import claim_run_folder\n"
            "with claim_run_folder(sys.argv[1]):\n"
            "    print('claimed', flush=True); time.sleep(120)\n",
            str(tmp_path / "out"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "claimed"
        err = refused(capsys, ["train", str(config_file), "--out", str(tmp_path / "out")])
        assert f"in use by another run (process {holder.pid})" in err
        assert not (tmp_path / "out" / "last.pt").exists()
    finally:
        holder.kill()
        holder.wait()
    main(["train", str(config_file), "--out", str(tmp_path / "out")])  # the lock died with it
    assert (tmp_path / "out" / "best.pt").is_file()


def test_temporary_files_of_a_killed_run_are_removed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".last.pt.abc123.tmp").write_bytes(b"partial")
    with claim_run_folder(out):
        assert not (out / ".last.pt.abc123.tmp").exists()


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_unusable_output_folder_fails_before_training(tmp_path, monkeypatch, capsys, config_file, where):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" if where == "a file" else tmp_path / "file" / "run"
    monkeypatch.setattr("f8lab.train.trainer.make_model", lambda *a, **k: pytest.fail("training started"))
    err = refused(capsys, ["train", str(config_file), "--out", str(out)])
    assert f"cannot write to the output folder {out}" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_output_folder_fails_before_training(tmp_path, capsys, config_file):
    (tmp_path / "ro").mkdir(mode=0o555)
    err = refused(capsys, ["train", str(config_file), "--out", str(tmp_path / "ro" / "run")])
    assert "cannot write to the output folder" in err


# ---------------------------------------------------------------- resuming


def test_resume_refuses_a_changed_config_and_names_the_keys(tmp_path, capsys, config_file, finished_run):
    err = refused(
        capsys,
        [
            "train",
            str(config_file),
            "--out",
            str(finished_run),
            "--resume",
            "--set",
            "optim.lr=0.05",
            "--set",
            "model.name=mobilenet_v2",
        ],
    )
    assert "optim.lr 0.1 -> 0.05" in err and "model.name 'resnet18' -> 'mobilenet_v2'" in err
    assert "trained with another config" in err
    err = refused(
        capsys, ["train", str(config_file), "--out", str(finished_run), "--resume", "--set", "quant.wl=8"]
    )
    assert "quant null -> set" in err


def test_resume_with_more_epochs_continues_the_run(tmp_path, capsys, config_file, finished_run):
    main(["train", str(config_file), "--out", str(finished_run), "--resume", "--set", "optim.epochs=2"])
    history = read_checkpoint(finished_run / "last.pt")["history"]
    assert [row["epoch"] for row in history] == [1, 2]
    err = refused(capsys, ["train", str(config_file), "--out", str(finished_run), "--resume"])
    assert "optim.epochs 2 -> 1" in err  # fewer epochs than the run has


# ---------------------------------------------------------------- checkpoints


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("command", ["eval", "export", "init", "resume"])
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, capsys, config_file, command):
    marker = tmp_path / "ran"
    evil = tmp_path / "run" / "last.pt"
    evil.parent.mkdir()
    torch.save({"kind": "f8lab-checkpoint", "quant": None, "payload": _RunsCode(marker)}, evil)
    argv = {
        "eval": ["eval", str(evil)],
        "export": ["export", str(evil), "--out", str(tmp_path / "m.onnx")],
        "init": [
            "train",
            str(config_file),
            "--out",
            str(tmp_path / "f8"),
            "--set",
            "quant.wl=8",
            "--init",
            str(evil),
        ],
        "resume": ["train", str(config_file), "--out", str(evil.parent), "--resume"],
    }[command]
    err = refused(capsys, argv)
    assert "could run code" in err and "system" in err
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x80\x02garbage", random.Random(0).randbytes(4096), "truncated"])
def test_an_unreadable_checkpoint_gets_a_message(tmp_path, capsys, finished_run, content):
    path = tmp_path / "bad.pt"
    if content == "truncated":
        whole = (finished_run / "best.pt").read_bytes()
        content = whole[: len(whole) // 2]
    path.write_bytes(content)
    err = refused(capsys, ["eval", str(path)])
    assert str(path) in err and any(w in err for w in ("cannot be read", "damaged"))


def test_random_bytes_are_never_read_as_a_checkpoint(tmp_path):
    """torch's unpickler meets random bytes with many exceptions (IndexError, KeyError,
    UnicodeDecodeError, ...): each becomes a CheckpointError."""
    generator = random.Random(1)
    for i in range(300):
        path = tmp_path / f"{i}.pt"
        path.write_bytes(generator.randbytes(4096))
        with pytest.raises(CheckpointError, match="cannot be read|damaged|refused"):
            load_tensors(path)


def test_a_missing_float_run_to_start_from_names_the_fixes(tmp_path, capsys, config_file):
    missing = tmp_path / "float_run" / "best.pt"
    err = refused(
        capsys,
        [
            "train",
            str(config_file),
            "--out",
            str(tmp_path / "f8"),
            "--set",
            "quant.wl=8",
            "--set",
            f"run.init={missing}",
        ],
    )
    assert str(missing) in err and "does not exist" in err
    assert "--init" in err and "run.init=null" in err
    assert not holds_run(tmp_path / "f8")


def test_a_plain_pickle_is_not_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "plain.pt"
    path.write_bytes(pickle.dumps({"kind": "f8lab-checkpoint"}))
    err = refused(capsys, ["eval", str(path)])
    assert "damaged or not a checkpoint" in err


@pytest.mark.parametrize("command", ["eval", "export", "init"])
def test_a_checkpoint_of_f8nets_own_code_is_refused_with_what_to_start_from(
    tmp_path, capsys, config_file, command
):
    """F8Net's model zoo saves {"model": state_dict} from a DDP wrapper, with its layer names."""
    path = tmp_path / "res18_8.pth"
    layers = {
        "module.head.0.conv.weight": torch.zeros(64, 3, 7, 7),
        "module.head.0.alpha": torch.tensor(8.0),
        "module.stage_0_layer_0.body.0.conv.weight": torch.zeros(64, 64, 3, 3),
        "module.stage_0_layer_0.body.0.input_fraclen": torch.tensor([6.0]),
        "module.classifier.0.weight": torch.zeros(1000, 512),
    }
    torch.save({"model": layers}, path)
    argv = {
        "eval": ["eval", str(path)],
        "export": ["export", str(path), "--out", str(tmp_path / "m.onnx")],
        "init": ["train", str(config_file), "--out", str(tmp_path / "f8"), "--init", str(path)],
    }[command]
    err = refused(capsys, argv)
    assert f"{path} is a checkpoint of F8Net's own code" in err
    assert "--init ptcv:resnet18" in err and "docs/method.md" in err
    assert f"f8lab eval {path} --f8net ROW --config CONFIG" in err
    assert not (tmp_path / "m.onnx").exists() and not holds_run(tmp_path / "f8")


def test_random_bytes_are_not_an_onnx_model(tmp_path, capsys):
    path = tmp_path / "model.onnx"
    path.write_bytes(os.urandom(2048))
    assert "is not an ONNX model" in refused(capsys, ["eval", str(path)])


def test_export_out_must_name_a_file(tmp_path, capsys, finished_run):
    err = refused(capsys, ["export", str(finished_run / "best.pt"), "--out", str(tmp_path)])
    assert "is a folder" in err and "model.onnx" in err


# ---------------------------------------------------------------- configs


@pytest.mark.parametrize(
    "setting,words",
    [
        ("data.train_limit=-5", "must be positive"),
        ("data.test_limit=0", "must be positive"),
        ("optim.max_iters=0", "must be positive"),
        ("optim.warmup_epochs=-1", "zero or positive"),
        ("optim.label_smoothing=1.0", "below 1"),
        ("optim.label_smoothing=-0.1", "zero or positive"),
        ("optim.lr=.nan", "finite"),
        ("optim.lr=.inf", "finite"),
        ("optim.lr=0", "positive"),
        ("model.num_classes=0", "must be positive"),
        ("model.in_channels=0", "must be positive"),
        ("quant.alpha_init=.inf", "finite"),
        ("model.name=[oops", "not valid YAML"),
    ],
)
def test_nonsense_settings_are_refused_before_any_work(tmp_path, capsys, config_file, setting, words):
    err = refused(capsys, ["train", str(config_file), "--out", str(tmp_path / "out"), "--set", setting])
    assert setting.split("=")[0].split(".")[-1] in err and words in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused(tmp_path, capsys, config_file):
    err = refused(
        capsys, ["train", str(config_file), "--out", str(tmp_path / "out"), "--set", "run.device=cuda"]
    )
    assert "run.device is cuda" in err and "cpu" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "text,words",
    [("", "is empty"), ("model: {name: resnet18\n", "line"), ("- a\n- b\n", "mapping of sections")],
)
def test_an_empty_or_broken_config_file_is_refused(tmp_path, capsys, text, words):
    path = _write(tmp_path / "bad.yaml", text)
    err = refused(capsys, ["train", str(path), "--out", str(tmp_path / "out")])
    assert str(path) in err and words in err


@pytest.mark.parametrize(
    "argument,value,problem",
    [
        ("num_classes", 0, "must be positive"),
        ("in_channels", 0, "must be positive"),
        ("in_channels", 1.5, "expected int"),
        ("width", float("nan"), "must be a finite number"),
        ("stem", "tiny", "'tiny' is not one of imagenet, small"),
    ],
)
def test_build_model_refuses_impossible_sizes(argument, value, problem):
    with pytest.raises(ValueError, match=f"{argument}: {problem}"):
        build_model("resnet18", **{"num_classes": 10, argument: value})


def test_a_run_whose_loss_blows_up_exits_1(tmp_path, capsys, config_file):
    err = refused(
        capsys,
        [
            "train",
            str(config_file),
            "--out",
            str(tmp_path / "out"),
            "--set",
            "optim.lr=1.0e+30",
            "--set",
            "run.log_every=1",
        ],
        code=1,
    )
    assert "not finite" in err and "optim.lr" in err
    assert not (tmp_path / "out" / "best.pt").exists()


# ---------------------------------------------------------------- quantizer ranges


@pytest.mark.parametrize(
    "dtype,wl,signed",
    [
        (torch.float16, 13, True),
        (torch.float16, 12, False),
        (torch.float16, 16, False),
        (torch.bfloat16, 10, True),
        (torch.bfloat16, 9, False),
    ],
)
def test_fix_quant_refuses_a_dtype_that_cannot_hold_the_range(dtype, wl, signed):
    with pytest.raises(TypeError, match=f"{dtype} holds integers exactly only up to"):
        fix_quant(torch.tensor([5000.0], dtype=dtype), wl, 0, signed)


@pytest.mark.parametrize(
    "dtype,wl", [(torch.float16, 12), (torch.float16, 8), (torch.bfloat16, 9), (torch.bfloat16, 8)]
)
def test_fix_quant_in_half_precision_equals_float32_where_it_is_exact(dtype, wl):
    x = (torch.randn(20_000, generator=torch.Generator().manual_seed(wl)) * 3).to(dtype)
    for fl in range(wl):
        got = fix_quant(x, wl, fl, signed=True)
        assert torch.equal(got.float(), fix_quant(x.float(), wl, fl, signed=True)), fl
        assert got.abs().max() * 2**fl <= 2 ** (wl - 1) - 1


def test_requantize_by_63_bits_or_more_rounds_to_zero():
    acc = torch.tensor([1000, -1000, 2**31 - 1, -(2**31)], dtype=torch.int32)
    for shift in (40, 63, 64, 70, 200):
        assert requantize(acc, shift, 0).tolist() == [0, 0, 0, 0], shift
    wide = torch.tensor([2**62 + 1, -(2**62) - 1, -(2**63), 2**63 - 1])
    assert requantize(wide, 63, 0).tolist() == [1, -1, -1, 1]
    assert requantize(wide, 64, 0).tolist() == [0, 0, 0, 0]


def test_quant_config_refuses_an_infinite_clipping_level():
    with pytest.raises(ValueError, match="alpha_init: must be a finite number, got inf"):
        QuantConfig(alpha_init=float("inf"))
