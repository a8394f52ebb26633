"""The trainer: float runs, fixed-point runs from a float model, tiny fine-tuning; one
process or several (torchrun / DistributedDataParallel).

Writes ``OUT/last.pt`` (every ``run.checkpoint_every`` iterations and every epoch),
``OUT/best.pt`` (best top-1), ``OUT/metrics.csv`` (a row per epoch, with the seconds its
training steps took), for a fixed-point model
``OUT/fraclens.csv`` (every quantized tensor's FL after each epoch) and, if TensorBoard is
installed, ``OUT/tensorboard/``. ``resume=True`` continues a killed run exactly: the same
next batch, optimizer and schedule state, FL buffers and random state.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import os
import time
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from f8lab.baselines import prepare_affine_qat
from f8lab.models import build_model, describe, from_float, load_float_state_dict
from f8lab.models.pytorchcv import pytorchcv_weights
from f8lab.nn import check_finite_formats
from f8lab.train.checkpoint import load_tensors, model_state, read_checkpoint, save_atomic
from f8lab.train.config import ConfigError, RunConfig, config_from_dict, resumed_config
from f8lab.train.data import make_batches
from f8lab.train.run_folder import claim_run_folder
from f8lab.train.schedule import lr_factor

METRIC_FIELDS = ["epoch", "iteration", "lr", "train_loss", "train_top1", "top1", "top5", "n", "train_seconds"]


@dataclasses.dataclass
class TrainResult:
    """What a run returns: the last epoch's metrics and the trained model (this process's)."""

    metrics: dict
    model: nn.Module


@dataclasses.dataclass
class Process:
    """Where this process stands: rank, world size and device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_process(device: str = "auto") -> Process:
    """Join the process group when launched by torchrun (NCCL on GPUs, gloo on CPUs)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "run.device is cuda, but PyTorch sees no CUDA device here; set run.device: auto or cpu"
        )
    cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        where = torch.device("cuda", local)
    else:
        where = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Process(rank, world, where)


def float_weights(init: str) -> dict[str, torch.Tensor]:
    """Float weights from an f8lab checkpoint, a saved state dict, ``torchvision:<name>`` or
    ``ptcv:<name>`` (PytorchCV's pretrained weights under torchvision's names)."""
    if init.startswith("ptcv:"):
        return pytorchcv_weights(init.split(":", 1)[1])
    if init.startswith("torchvision:"):
        import torchvision

        name = init.split(":", 1)[1]
        weights = torchvision.models.get_model_weights(name).DEFAULT  # downloads: needs internet
        return weights.get_state_dict(progress=True)
    try:
        state = load_tensors(init)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{error}: it is the float run this one starts from (run.init); train that run "
            "first, point --init at another float checkpoint, or start from random weights "
            "with --set run.init=null"
        ) from None
    if isinstance(state, dict) and state.get("kind") == "f8lab-checkpoint":
        if state["quant"] is not None or state.get("affine") is not None:
            raise ValueError(f"{init} is a quantized checkpoint; initialise from a float one")
        return state["model"]
    return state


def make_model(config: RunConfig, init: str | None) -> nn.Module:
    """The model of a run: float, or fixed point or torch.ao affine QAT initialised from
    float weights."""
    float_model = build_model(**dataclasses.asdict(config.model))
    if init is not None:
        load_float_state_dict(float_model, float_weights(init))
    if config.affine is not None:
        return prepare_affine_qat(float_model, config.affine)
    if config.quant is None:
        return float_model
    return from_float(float_model, config.quant)


def memory_format(choice: str, device: torch.device) -> torch.memory_format:
    """The layout of the model's weights and images in a run: ``"auto"`` is channels_last
    on the CPU (oneDNN runs a training step 1.1-1.8x faster in it) and contiguous on CUDA."""
    if choice == "auto":
        return torch.channels_last if device.type == "cpu" else torch.contiguous_format
    return torch.channels_last if choice == "channels_last" else torch.contiguous_format


def parameter_groups(model: nn.Module, weight_decay: float, scheme: str) -> list[dict]:
    """Weight decay on all parameters, all but BatchNorm's, or all but BatchNorm's and
    depthwise convolutions'."""
    skip: set[int] = set()
    for module in model.modules():
        if scheme != "all" and isinstance(module, nn.BatchNorm2d):
            skip.update(id(p) for p in module.parameters(recurse=False))
        if scheme == "no_bn_depthwise" and isinstance(module, nn.Conv2d) and module.groups > 1:
            skip.add(id(module.weight))
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) not in skip], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) in skip], "weight_decay": 0.0},
    ]


class Classifier(Protocol):
    """What ``evaluate`` runs: a model, or an exported file (``OnnxModel``)."""

    def eval(self) -> Any: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class StepObserver(Protocol):
    """Watches a run from the inside (``f8lab.analysis.FormatTrace`` is one): ``attach``
    gets the model once it is built, ``after_step`` every optimizer step with the step's
    loss on the device (reading it waits on the device: do so only on the steps you record).
    """

    def attach(self, model: nn.Module) -> None: ...

    def after_step(self, iteration: int, loss: torch.Tensor) -> None: ...


@torch.no_grad()
def evaluate(model: Classifier, batches, process: Process | None = None) -> dict:
    """Top-1 / top-5 accuracy (%) and the number of images, summed over all processes.

    Images are given in the dtype of the model's parameters (float64 for a float64 model);
    ``process`` default: this process alone, on the CPU.
    """
    process = process or Process()
    model.eval()
    parameter = next(model.parameters(), None) if isinstance(model, nn.Module) else None
    dtype = parameter.dtype if parameter is not None else torch.float32
    totals = torch.zeros(3, dtype=torch.float64, device=process.device)
    for x, y in batches.batches(0):
        x, y = x.to(process.device, dtype), y.to(process.device)
        logits = model(x)
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        totals[0] += (top[:, 0] == y).sum()
        totals[1] += (top == y[:, None]).any(dim=1).sum()
        totals[2] += len(y)
    if process.world > 1:
        dist.all_reduce(totals)
    n = int(totals[2])
    return {"top1": 100.0 * totals[0].item() / n, "top5": 100.0 * totals[1].item() / n, "n": n}


def write_metrics(rows: list[dict], path: Path) -> None:
    """metrics.csv, rewritten whole (atomically) from the run's history."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(buffer.getvalue())
    os.replace(tmp, path)


def write_fraclens(model: nn.Module, epoch: int, path: Path) -> None:
    """Append every quantized tensor's FL (the mean over channels when per channel)."""
    table = describe(model)[["layer", "tensor", "signed", "fl"]]
    table.insert(0, "epoch", epoch)
    table["fl"] = [float(np.mean(fl)) for fl in table.fl]
    table.to_csv(path, mode="a" if epoch > 1 else "w", header=epoch == 1, index=False)


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # TensorBoard is optional
        return None
    return SummaryWriter(str(out / "tensorboard"))


@dataclasses.dataclass
class Progress:
    """Where a run stands; saved in every checkpoint, so a resumed run continues exactly."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches of the current epoch done
    iteration: int = 0  # optimizer steps in all
    best_top1: float = -1.0
    history: list = dataclasses.field(default_factory=list)  # a metrics row per epoch
    seen: int = 0  # training images of the current epoch so far
    # (loss sum, correct) of the current epoch, on the training device
    sums: torch.Tensor = dataclasses.field(default_factory=lambda: torch.zeros(2, dtype=torch.float64))

    def partial(self) -> dict:
        """The current epoch's running sums as numbers (reads the device)."""
        loss_sum, correct = self.sums.tolist()
        return {"seen": self.seen, "loss_sum": loss_sum, "correct": correct}

    def epoch_metrics(self) -> dict:
        """Mean training loss and top-1 of the epoch so far (reads the device)."""
        partial, seen = self.partial(), max(self.seen, 1)
        return {"train_loss": partial["loss_sum"] / seen, "train_top1": 100.0 * partial["correct"] / seen}


def _save(path: Path, model: nn.Module, optimizer, scheduler, config: RunConfig, progress: Progress) -> None:
    save_atomic(
        {
            **model_state(model),
            "config": config.to_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": progress.epoch,
            "batch": progress.batch,
            "iteration": progress.iteration,
            "best_top1": progress.best_top1,
            "history": progress.history,
            "partial": progress.partial(),
            "rng": torch.get_rng_state(),
        },
        path,
    )


def _restore(state: dict, model: nn.Module, optimizer, scheduler, device) -> Progress:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    partial = state["partial"]
    return Progress(
        state["epoch"],
        state["batch"],
        state["iteration"],
        state["best_top1"],
        state["history"],
        partial["seen"],
        torch.tensor([partial["loss_sum"], partial["correct"]], dtype=torch.float64, device=device),
    )


def check_health(model: nn.Module, progress: Progress) -> None:
    """Stop a run whose loss or formats went non-finite, before anything is saved: one
    read of the device, made at logging points and checkpoints, not every step."""
    if not math.isfinite(progress.sums[0].item()):
        raise FloatingPointError(
            f"the training loss is not finite at iteration {progress.iteration} (epoch "
            f"{progress.epoch + 1}); the last checkpoint holds the run before it: lower "
            "optim.lr or check the data"
        )
    check_finite_formats(model)


def _epoch_bar(batches, epoch: int, epochs: int, start: int, show: bool):
    return tqdm(
        batches.batches(epoch, start),
        total=len(batches),
        initial=start,
        desc=f"epoch {epoch + 1}/{epochs}",
        disable=not show,
        leave=False,
        dynamic_ncols=True,
    )


def _report_epoch(
    metrics: dict, model: nn.Module, config: RunConfig, out: Path, writer, history: list
) -> None:
    print(
        f"epoch {metrics['epoch']}: top1 {metrics['top1']:.2f}  top5 {metrics['top5']:.2f}  "
        f"train loss {metrics['train_loss']:.4f}",
        flush=True,
    )
    write_metrics(history, out / "metrics.csv")
    if config.quant is not None:
        write_fraclens(model, metrics["epoch"], out / "fraclens.csv")
    if writer is not None:
        for key in ("train_loss", "train_top1", "top1", "top5", "lr"):
            writer.add_scalar(key, metrics[key], metrics["epoch"])


def _network(model: nn.Module, process: Process, compile_model: bool) -> nn.Module:
    """What the loop calls: the model, wrapped by DDP over several processes, compiled
    with torch.compile when asked."""
    net = model
    if process.world > 1:  # buffers get new tensors each step: DDP cannot follow them
        net = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[process.device.index] if process.device.type == "cuda" else None,
            broadcast_buffers=False,
        )
    return cast(nn.Module, torch.compile(net)) if compile_model else net


def sync_buffers(model: nn.Module, process: Process) -> None:
    """Give every process rank 0's running statistics and formats (before evaluating)."""
    if process.world > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


def _fit(
    config: RunConfig,
    out: Path,
    process: Process,
    state: dict | None,
    init: str | None,
    train_batches,
    test_batches,
    show: bool,
    observer: StepObserver | None = None,
) -> TrainResult:
    """The run itself, in a claimed output folder: the model (from ``init``, or from
    ``state`` when resuming), the optimizer and the loop."""
    torch.manual_seed(config.run.seed)
    layout = memory_format(config.run.memory_format, process.device)
    model = make_model(config, init).to(process.device).to(memory_format=layout)
    if observer is not None:
        observer.attach(model)
    optim = config.optim
    lr = optim.lr * config.data.batch_size * process.world / 256
    groups = parameter_groups(model, optim.weight_decay, optim.weight_decay_on)
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=optim.momentum, nesterov=optim.nesterov)
    per_epoch = len(train_batches)
    total = (
        per_epoch * optim.epochs
        if optim.max_iters is None
        else min(optim.max_iters, per_epoch * optim.epochs)
    )
    warmup = int(optim.warmup_epochs * per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: lr_factor(it, total, warmup, optim.schedule)
    )
    if state is not None:
        run = _restore(state, model, optimizer, scheduler, process.device)
    else:
        run = Progress(sums=torch.zeros(2, dtype=torch.float64, device=process.device))
    net = _network(model, process, config.run.compile)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=optim.label_smoothing)
    writer = _tensorboard(out) if process.main else None

    def save(path: Path) -> None:
        check_health(model, run)
        if process.main:
            _save(path, model, optimizer, scheduler, config, run)

    metrics = run.history[-1] if run.history else {}
    while run.epoch < optim.epochs and run.iteration < total:
        net.train()
        started = time.perf_counter()
        # closed on an error too, so that the message is not printed after a half bar
        with _epoch_bar(train_batches, run.epoch, optim.epochs, run.batch, show) as bar:
            for x, y in bar:
                x = x.to(process.device, non_blocking=True, memory_format=layout)
                y = y.to(process.device, non_blocking=True)
                logits = net(x)
                loss = loss_fn(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                with torch.no_grad():  # running sums on the device: no host synchronisation
                    run.sums[0] += loss.detach() * len(y)
                    run.sums[1] += (logits.argmax(1) == y).sum()
                run.iteration, run.batch = run.iteration + 1, run.batch + 1
                run.seen += len(y)
                if observer is not None:
                    observer.after_step(run.iteration, loss.detach())
                if run.iteration % config.run.log_every == 0:
                    check_health(model, run)
                    shown = run.epoch_metrics()
                    bar.set_postfix(
                        loss=f"{shown['train_loss']:.3f}",
                        top1=f"{shown['train_top1']:.1f}",
                        lr=f"{scheduler.get_last_lr()[0]:.4g}",
                    )
                if run.iteration % config.run.checkpoint_every == 0:
                    save(out / "last.pt")
                if run.iteration >= total:
                    break
        check_health(model, run)  # reads the device: the epoch's steps are done
        seconds = time.perf_counter() - started
        sync_buffers(model, process)
        metrics = {
            "epoch": run.epoch + 1,
            "iteration": run.iteration,
            "lr": scheduler.get_last_lr()[0],
            **run.epoch_metrics(),
            **evaluate(net, test_batches, process),
            "train_seconds": round(seconds, 3),
        }
        run.epoch, run.batch, run.seen = run.epoch + 1, 0, 0
        run.sums.zero_()
        run.history.append(metrics)
        if process.main:
            _report_epoch(metrics, model, config, out, writer, run.history)
        if metrics["top1"] > run.best_top1:
            run.best_top1 = metrics["top1"]
            save(out / "best.pt")
        save(out / "last.pt")
    if writer is not None:
        writer.close()
    if process.world > 1:
        dist.barrier()
    return TrainResult(metrics, model)


def train(
    config: RunConfig,
    out: str | Path,
    resume: bool = False,
    init: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    observer: StepObserver | None = None,
) -> TrainResult:
    """Run the training that ``config`` describes.

    A step never waits on the host: the loss and accuracy sums stay on the device and are
    read every ``run.log_every`` iterations, at checkpoints and at epoch ends, where a
    non-finite loss or format stops the run before it is saved.

    Args:
        config: the validated run configuration.
        out: the output folder (checkpoints, metrics.csv).
        resume: continue from ``out/last.pt`` exactly where it stopped; ``config`` must be
            the run's, apart from what ``RESUMABLE`` allows (more epochs, logging, device).
        init: float weights to start from; overrides ``config.run.init``.
        progress: show tqdm progress bars (on the main process).
        overwrite: replace the run ``out`` holds; without it (or ``resume``) a folder that
            holds a run is refused.
        observer: watches the steps (a StepObserver), for studies of the training itself.

    Returns:
        The last epoch's metrics and the model.
    """
    out = Path(out)
    process = start_process(config.run.device)
    init = init if init is not None else config.run.init
    state = None
    if resume:
        last = out / "last.pt"
        if not last.is_file():
            raise FileNotFoundError(f"--resume: no {last} to resume from")
        state = read_checkpoint(last)
        config = resumed_config(state["config"], config, str(last))
    train_batches = make_batches(config, True, process.rank, process.world, process.device)
    test_batches = make_batches(config, False, process.rank, process.world, process.device)
    if len(train_batches) == 0:
        raise ValueError(
            f"no full batch of {config.data.batch_size} per process: lower "
            "data.batch_size or raise data.train_limit"
        )
    folder = claim_run_folder(out, resume, overwrite) if process.main else contextlib.nullcontext()
    with folder:  # from here on the run may write to out
        return _fit(
            config,
            out,
            process,
            state,
            None if resume else init,
            train_batches,
            test_batches,
            progress and process.main,
            observer,
        )


def _identity(config: dict) -> dict:
    """What makes two runs the same: the config (read back, so that a section added since
    counts as its default) apart from where the weights came from (one checkpoint is named
    by different relative paths from different folders)."""
    config = config_from_dict(config).to_dict()
    return {**config, "run": {k: v for k, v in config["run"].items() if k != "init"}}


def holds_run(out: str | Path, config: RunConfig) -> bool:
    """Whether ``out`` holds a run (finished or not) of ``config``; where the initial
    weights came from does not count."""
    last = Path(out) / "last.pt"
    return last.is_file() and _identity(read_checkpoint(last)["config"]) == _identity(config.to_dict())


def train_once(config: RunConfig, out: str | Path, progress: bool = True) -> TrainResult:
    """Train unless ``out`` already holds this run: a finished run is loaded, an interrupted
    one resumed; a folder holding a run of another config is trained again from the start.
    """
    if holds_run(out, config):
        return train(config, out, resume=True, progress=progress)
    if (Path(out) / "last.pt").is_file():
        print(f"{out} holds a run of another config: training it again", flush=True)
    return train(config, out, progress=progress, overwrite=True)
