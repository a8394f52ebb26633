"""Training: configs, batches, schedule, checkpoints and the trainer (one process or DDP)."""

from f8lab.train.checkpoint import load_model, read_checkpoint, save_atomic
from f8lab.train.config import ConfigError, RunConfig, load_config
from f8lab.train.trainer import StepObserver, TrainResult, evaluate, holds_run, train, train_once

__all__ = [
    "ConfigError",
    "RunConfig",
    "StepObserver",
    "evaluate",
    "holds_run",
    "load_config",
    "load_model",
    "read_checkpoint",
    "save_atomic",
    "train",
    "train_once",
    "TrainResult",
]
