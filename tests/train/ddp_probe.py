"""Run under torchrun by test_distributed.py: train, then save this rank's weights."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from f8lab.train import load_config, train

config_path, out = sys.argv[1], Path(sys.argv[2])
result = train(load_config(config_path), out, progress=False)
torch.save(result.model.state_dict(), out / f"rank{dist.get_rank()}.pt")
