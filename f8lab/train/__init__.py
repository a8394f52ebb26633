"""Training: configs, batches, schedule, checkpoints and the trainer (one process or DDP)."""

from f8lab.train.checkpoint import load_model, read_checkpoint, save_atomic
from f8lab.train.config import ConfigError, RunConfig, load_config
from f8lab.train.trainer import TrainResult, evaluate, train, train_once

__all__ = ["ConfigError", "RunConfig", "evaluate", "load_config",
           "load_model", "read_checkpoint", "save_atomic", "train", "train_once", "TrainResult"]
