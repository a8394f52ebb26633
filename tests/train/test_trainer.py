"""The trainer on synthetic data: metrics, checkpoints, schedule, weight decay, data order."""

import csv
import math
from pathlib import Path

import pytest
import torch

from f8lab.data import DataError
from f8lab.models import build_model
from f8lab.nn import check_finite_formats
from f8lab.quant import QuantConfig
from f8lab.train import load_config, load_model, read_checkpoint, save_atomic, train, train_once
from f8lab.train.data import TensorBatches, make_batches, sample_test_images
from f8lab.train.schedule import lr_factor
from f8lab.train.trainer import make_model, parameter_groups
from helpers import TINY_MODEL

TINY = (
    TINY_MODEL
    + """
data: {dataset: synthetic, batch_size: 32, train_limit: 256, test_limit: 64}
optim: {lr: 0.1, epochs: 2, warmup_epochs: 0.5}
run: {seed: 0, checkpoint_every: 3}
"""
)


def tiny_config(tmp_path: Path, extra: list[str] = ()):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return load_config(path, "default", list(extra))


def test_float_then_fixed_point_run(tmp_path):
    metrics = train(tiny_config(tmp_path), tmp_path / "fp", progress=False).metrics
    assert metrics["epoch"] == 2 and metrics["n"] == 64
    rows = list(csv.DictReader((tmp_path / "fp" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "top1", "top5", "lr"} <= set(rows[0])
    fixed = tiny_config(tmp_path, ["quant.wl=8", f"run.init={tmp_path / 'fp' / 'best.pt'}"])
    result = train(fixed, tmp_path / "f8", progress=False)
    model = load_model(tmp_path / "f8" / "last.pt")
    assert model.quant is not None
    state = result.model.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.act1.ema.updates.item() == 16  # 8 iterations per epoch, 2 epochs


def test_fixed_point_run_starts_from_the_float_weights(tmp_path):
    train(tiny_config(tmp_path, ["optim.epochs=1"]), tmp_path / "fp", progress=False)
    fixed = tiny_config(tmp_path, ["quant.wl=8", f"run.init={tmp_path / 'fp' / 'last.pt'}"])
    model = make_model(fixed, fixed.run.init)
    float_model = load_model(tmp_path / "fp" / "last.pt")
    assert torch.equal(model.layer1[0].conv1.weight, float_model.layer1[0].conv1.weight)
    assert torch.equal(model.bn1.running_var, float_model.bn1.running_var)


@pytest.mark.parametrize("quant", [[], ["quant.wl=8", "quant.per_channel=true"]])
def test_channels_last_runs_train_as_contiguous_ones_do(tmp_path, quant):
    """The run's layout changes only the order of the float sums: on the CPU the default
    (auto) is channels_last, and a step of a contiguous run of the same config gives the
    same weights within float tolerance. (One step: this random-data model is chaotic, a
    1e-7 change of one weight moves the next step's gradients by 1e-4.)"""
    runs = {}
    for layout in ("auto", "contiguous"):
        config = tiny_config(
            tmp_path, ["optim.epochs=1", "optim.max_iters=1", *quant, f"run.memory_format={layout}"]
        )
        runs[layout] = train(config, tmp_path / layout, progress=False)
    weight = runs["auto"].model.layer1[0].conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert runs["auto"].metrics["train_loss"] == pytest.approx(
        runs["contiguous"].metrics["train_loss"], rel=1e-6
    )
    for (key, a), b in zip(
        runs["auto"].model.state_dict().items(), runs["contiguous"].model.state_dict().values()
    ):
        assert torch.allclose(a.double(), b.double(), rtol=1e-5, atol=1e-6), key


def test_init_from_a_torchvision_format_state_dict(tmp_path):
    state = build_model("resnet18", 10, stem="small", in_channels=1, width=0.125).state_dict()
    torch.save(state, tmp_path / "weights.pth")
    config = tiny_config(tmp_path, ["quant.wl=8"])
    model = make_model(config, str(tmp_path / "weights.pth"))
    assert torch.equal(model.fc.weight, state["fc.weight"])


def test_schedule():
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(99, 100, 10, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))
    assert lr_factor(50, 100, 0, "constant") == 1.0


def test_weight_decay_schemes():
    model = build_model("mobilenet_v2", 10, stem="small", in_channels=1, width=0.25)
    bn = sum(
        p.numel() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()
    )
    depthwise = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1
    )
    for scheme, skipped in (("all", 0), ("no_bn", bn), ("no_bn_depthwise", bn + depthwise)):
        decayed, free = parameter_groups(model, 1e-4, scheme)
        assert sum(p.numel() for p in free["params"]) == skipped
        assert decayed["weight_decay"] == 1e-4 and free["weight_decay"] == 0


def test_batches_repeat_and_split_across_processes(tmp_path):
    config = tiny_config(tmp_path)
    batches = make_batches(config, True)
    first = list(batches.batches(1))
    again = list(batches.batches(1, start=3))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first[3:], again))
    assert not torch.equal(first[0][0], next(batches.batches(2))[0])
    assert torch.equal(first[0][0] * 256, (first[0][0] * 256).round())  # pixels / 256
    halves = [list(make_batches(config, True, rank, 2).batches(1)) for rank in (0, 1)]
    assert [len(h) for h in halves] == [4, 4]
    assert torch.equal(halves[0][0][1], first[0][1]) and torch.equal(halves[1][0][1], first[1][1])


def test_atomic_checkpoint_survives_a_crash(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_atomic({"kind": "f8lab-checkpoint", "value": 1}, path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"kind": "f8lab-checkpoint", "value": 2}, path)
    monkeypatch.undo()
    assert read_checkpoint(path)["value"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_missing_data_set_names_the_script(tmp_path):
    config = tiny_config(tmp_path, ["data.dataset=fashion_mnist", f"data.root={tmp_path}"])
    with pytest.raises(DataError, match="data_scripts/get_fashion_mnist.py"):
        train(config, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .*last.pt to resume from"):
        train(tiny_config(tmp_path), tmp_path / "none", resume=True, progress=False)


def test_fixed_point_run_records_fraclens_per_epoch(tmp_path):
    train(tiny_config(tmp_path), tmp_path / "fp", progress=False)
    fixed = tiny_config(tmp_path, ["quant.wl=8", f"run.init={tmp_path / 'fp' / 'best.pt'}"])
    result = train(fixed, tmp_path / "f8", progress=False)
    rows = list(csv.DictReader((tmp_path / "f8" / "fraclens.csv").open()))
    assert {int(r["epoch"]) for r in rows} == {1, 2}
    last = {(r["layer"], r["tensor"]): float(r["fl"]) for r in rows if r["epoch"] == "2"}
    assert last[("conv1", "input")] == int(result.model.image.running_fraclen())
    assert not (tmp_path / "fp" / "fraclens.csv").exists()


def test_train_once_reuses_a_finished_run_and_retrains_another_config(tmp_path, capsys):
    config = tiny_config(tmp_path, ["optim.epochs=1"])
    first = train_once(config, tmp_path / "run", progress=False)
    stamp = (tmp_path / "run" / "last.pt").stat().st_mtime_ns
    again = train_once(config, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "last.pt").stat().st_mtime_ns == stamp  # nothing trained
    assert again.metrics == first.metrics
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in first.model.state_dict().items())
    other = tiny_config(tmp_path, ["optim.epochs=1", "optim.lr=0.05"])
    train_once(other, tmp_path / "run", progress=False)
    assert "another config" in capsys.readouterr().out
    assert read_checkpoint(tmp_path / "run" / "last.pt")["config"]["optim"]["lr"] == 0.05


def test_sample_test_images_gives_the_first_ones():
    config = load_config(
        Path(__file__).resolve().parents[2] / "configs/fashion_mnist/resnet18_fp.yaml", "quick"
    )
    images, labels = sample_test_images(config, 8)
    batch_x, batch_y = next(iter(make_batches(config, False).batches(0)))
    assert images.shape == (8, 1, 28, 28) and torch.equal(images, batch_x[:8])
    assert torch.equal(labels, batch_y[:8])


def test_device_augmentation_is_a_padded_crop_and_a_flip_per_image():
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    crops = torch.tensor([[0, 0, 0], [4, 4, 0], [2, 1, 1], [0, 4, 1], [3, 0, 0], [1, 2, 1]])
    out = TensorBatches._augment(images, crops)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for image, (dy, dx, flip), got in zip(padded, crops.tolist(), out):
        expected = image[:, dy : dy + 28, dx : dx + 28]
        assert torch.equal(got, expected.flip(-1) if flip else expected)


def test_a_run_repeats_exactly_and_an_epoch_plan_depends_on_seed_and_epoch(tmp_path):
    config = tiny_config(tmp_path)
    first = [x for x, _ in make_batches(config, True).batches(1)]
    again = [x for x, _ in make_batches(config, True).batches(1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    reseeded = tiny_config(tmp_path, ["run.seed=1"])
    assert not torch.equal(first[0], next(make_batches(reseeded, True).batches(1))[0])


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    train(tiny_config(tmp_path, ["optim.epochs=1"]), tmp_path / "fp", progress=False)
    settings = [
        "quant.wl=8",
        f"run.init={tmp_path / 'fp' / 'best.pt'}",
        "run.log_every=1",
        "run.checkpoint_every=3",
        "optim.schedule=constant",
        "optim.warmup_epochs=0",
        "optim.epochs=1",
    ]
    three = tiny_config(tmp_path, settings + ["optim.max_iters=3"])
    good = train(three, tmp_path / "three", progress=False).model.state_dict()
    loss, calls = torch.nn.CrossEntropyLoss.forward, []

    def nan_at_step_5(self, logits, target):
        calls.append(1)
        return loss(self, logits, target) * (math.nan if len(calls) == 5 else 1.0)

    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", nan_at_step_5)
    with pytest.raises(FloatingPointError, match="not finite at iteration 5"):
        train(tiny_config(tmp_path, settings), tmp_path / "f8", progress=False)
    kept = read_checkpoint(tmp_path / "f8" / "last.pt")
    assert kept["iteration"] == 3 and not (tmp_path / "f8" / "best.pt").exists()
    # weight FLs are chosen anew by every forward, also by the evaluation after step 3
    assert all(
        torch.equal(v, good[k]) for k, v in kept["model"].items() if not k.endswith("weight_quant.fraclen")
    )


def test_non_finite_formats_name_the_quantizer():
    model = build_model("resnet18", 10, quant=QuantConfig(), stem="small", in_channels=1, width=0.125).train()
    check_finite_formats(model)
    x = torch.rand(4, 1, 28, 28)
    x[0, 0, 0, 0] = float("nan")
    model(x)
    with pytest.raises(FloatingPointError, match=r"NaN or Inf values \(first: conv1.weight_quant, act1, "):
        check_finite_formats(model)
