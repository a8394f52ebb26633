"""Two processes with gloo: DistributedDataParallel keeps both ranks' weights identical."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from f8lab.train import load_config
from f8lab.train.trainer import make_model
from helpers import TINY_MODEL

PROBE = Path(__file__).with_name("ddp_probe.py")
CONFIG = (
    TINY_MODEL
    + """
data: {dataset: synthetic, batch_size: 16, train_limit: 128, test_limit: 32}
optim: {lr: 0.1, epochs: 1, max_iters: 3}
quant: {wl: 8}
run: {seed: 0, device: cpu}
"""
)


def test_two_ranks_hold_the_same_weights(tmp_path):
    config = tmp_path / "ddp.yaml"
    config.write_text(CONFIG)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run(
        [
            torchrun,
            "--nproc_per_node",
            "2",
            "--master_port",
            "29731",
            str(PROBE),
            str(config),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rank0 = torch.load(tmp_path / "out" / "rank0.pt")
    rank1 = torch.load(tmp_path / "out" / "rank1.pt")
    saved = torch.load(tmp_path / "out" / "last.pt", weights_only=False)["model"]
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    assert torch.equal(saved["fc.weight"], rank0["fc.weight"])  # rank 0 wrote the checkpoint
    torch.manual_seed(0)
    start = make_model(load_config(config), None).state_dict()
    assert not torch.equal(start["fc.weight"], rank0["fc.weight"])  # the steps moved the weights
    assert rank0["act1.ema.updates"].item() == 3
