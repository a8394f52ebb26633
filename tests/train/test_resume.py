"""A run killed with SIGKILL in the middle of an epoch and resumed ends with the weights
of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import torch

from f8lab.train import load_config, read_checkpoint, train
from helpers import TINY_MODEL

CONFIG = (
    TINY_MODEL
    + """
data: {dataset: synthetic, batch_size: 16, train_limit: 320, test_limit: 32, augment: true}
optim: {lr: 0.05, epochs: 2, warmup_epochs: 0.5}
quant: {wl: 8}
run: {seed: 3, checkpoint_every: 3}
"""
)


def untimed(row: dict) -> dict:
    """A metrics row without its wall-clock time, which no two runs share."""
    return {k: v for k, v in row.items() if k != "train_seconds"}


def test_killed_run_resumes_exactly(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    config = load_config(path)
    reference = train(config, tmp_path / "reference", progress=False).model.state_dict()

    out = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "f8lab", "train", str(path), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (out / "last.pt").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stopped = read_checkpoint(out / "last.pt")
    assert stopped["epoch"] == 0 and 0 < stopped["batch"] < 20, "killed in the middle of epoch 1"

    resumed = train(config, out, resume=True, progress=False).model.state_dict()
    assert resumed.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(resumed[key], value), key
    history = read_checkpoint(out / "last.pt")["history"]
    expected = read_checkpoint(tmp_path / "reference" / "last.pt")["history"]
    assert [untimed(row) for row in history] == [untimed(row) for row in expected]
