"""The guide's commands for a row of the paper's tables ("The paper's ImageNet rows"), run
on a tiny ImageNet-shaped folder: tiny fine-tuning from PytorchCV's weights (its offline
model here: the real ones are a download), then every evaluated form of the result."""

import json

import pytest
import torch

from f8lab.cli import main
from f8lab.export import OnnxModel
from f8lab.train import read_checkpoint
from f8lab.train.checkpoint import model_from_state
from f8lab.train.config import config_from_dict, with_data_overrides
from f8lab.train.data import make_batches
from helpers import write_image

pytorchcv = pytest.importorskip("pytorchcv.model_provider")

REPO_CONFIG = "configs/imagenet/resnet18_f8_tiny.yaml"


def image_folder(root, images_per_class):
    for split, n in (("train", images_per_class), ("val", 1)):
        for label in range(3):
            for i in range(n):
                write_image(root / split / f"n0000000{label}" / f"{i}.JPEG", (80 * label, 40 * i, 120))
    return root


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_tiny_fine_tuning_from_ptcv_then_each_form_agrees(tmp_path, capsys, monkeypatch):
    offline = pytorchcv.get_model
    monkeypatch.setattr(pytorchcv, "get_model", lambda name, pretrained: offline(name, pretrained=False))
    root = image_folder(tmp_path / "imagenet", images_per_class=4)
    data = ["--set", f"data.root={root}"]
    run = tmp_path / "run"
    main(
        ["train", REPO_CONFIG, "--profile", "imagenet", "--out", str(run), *data]
        + ["--set", "optim.max_iters=1", "--set", "data.batch_size=4", "--set", "data.workers=0"]
    )
    capsys.readouterr()
    checkpoint = str(run / "best.pt")
    main(["eval", checkpoint, "--mode", "fake", *data])
    fake = last_json(capsys)
    main(["eval", checkpoint, "--mode", "integer", *data])
    integer = last_json(capsys)
    main(["export", checkpoint, "--out", str(tmp_path / "model.onnx"), *data])
    capsys.readouterr()
    main(["eval", str(tmp_path / "model.onnx"), *data])
    onnx = last_json(capsys)
    assert fake["n"] == integer["n"] == onnx["n"] == 3
    assert fake["top1"] == integer["top1"] == onnx["top1"]
    # the same logits behind those figures (an untrained head's top-1 alone could agree by chance)
    state = read_checkpoint(checkpoint)
    config = with_data_overrides(config_from_dict(state["config"]), [f"data.root={root}"])
    images = torch.cat([x for x, _ in make_batches(config, False).batches(0)]).double()
    model = model_from_state(state).double()
    with torch.no_grad():
        logits = model(images)
    onnx_model = OnnxModel(tmp_path / "model.onnx")  # equal to the integer model (tests/export)
    assert torch.equal(onnx_model(images).double() / 2**onnx_model.output_fraclen, logits)
