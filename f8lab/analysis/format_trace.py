"""Formats as training goes, step by step: what a run does to its fractional lengths,
clipping levels and weights (the study of why grid search and PACT clipping do not mix,
docs/method.md §4).

``FormatTrace`` is a ``StepObserver`` for ``f8lab.train.train``: every ``every`` steps it
records, for each tracked activation quantizer, the format its tensor's scale used (the
rounded EMA), the batch's own FL and the clipping level; for each layer, its weight FL and
the share of its weights that round to zero; and the step's loss. Recording reads the
device, so it belongs to studies, not to production runs.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from f8lab.models.describe import clip_level, quantized_layers
from f8lab.nn import ActQuant, WeightQuant
from f8lab.train import RunConfig, holds_run, train

FORMAT_COLUMNS = ["iteration", "kind", "tensor", "reads", "fl", "batch_fl", "clip", "zero_share"]
FORMATS_CSV, LOSSES_CSV = "format_trace.csv", "loss_trace.csv"


class FormatTrace:
    """Records a run's formats and loss every ``every`` training steps.

    After the run, ``formats`` has a row per recorded step and tensor: ``kind`` "input"
    (``tensor`` is the activation quantizer; ``fl`` the format its scale used, ``batch_fl``
    the batch's own, ``clip`` the clipping level) or "weight" (``tensor`` is the layer,
    ``reads`` its input quantizer, ``fl`` the weight FL, the mean over channels when per
    channel, ``zero_share`` the share of quantized weights equal to zero); ``losses`` has
    the loss of each recorded step.
    """

    def __init__(self, every: int = 2) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive number of steps, got {every}")
        self.every = every
        self._iteration = 0  # the step whose forward pass runs next
        self._formats: list[dict] = []
        self._losses: list[dict] = []

    @property
    def formats(self) -> pd.DataFrame:
        return pd.DataFrame(self._formats, columns=FORMAT_COLUMNS)

    @property
    def losses(self) -> pd.DataFrame:
        return pd.DataFrame(self._losses, columns=["iteration", "loss"])

    def attach(self, model: nn.Module) -> None:
        names = {module: name for name, module in model.named_modules()}
        watched: set[ActQuant] = set()
        for layer, module, quantizer in quantized_layers(model):
            module.weight_quant.register_forward_hook(partial(self._record_weight, layer, names[quantizer]))
            if quantizer.tracked and quantizer not in watched:
                watched.add(quantizer)
                quantizer.register_forward_hook(partial(self._record_input, names[quantizer]))

    def after_step(self, iteration: int, loss: torch.Tensor) -> None:
        if self._recording():
            self._losses.append(dict(iteration=self._iteration, loss=loss.item()))
        self._iteration = iteration

    def _recording(self) -> bool:
        return self._iteration % self.every == 0

    def _record_input(self, name: str, quantizer: ActQuant, args, output) -> None:
        if quantizer.training and self._recording():
            self._formats.append(
                dict(
                    iteration=self._iteration,
                    kind="input",
                    tensor=name,
                    reads=None,
                    fl=quantizer.pass_fraclen.item(),
                    batch_fl=quantizer.batch_fraclen.item(),
                    clip=clip_level(quantizer),
                    zero_share=float("nan"),
                )
            )

    def _record_weight(
        self, layer: str, reads: str, quantizer: WeightQuant, args, output: torch.Tensor
    ) -> None:
        if quantizer.training and self._recording():
            self._formats.append(
                dict(
                    iteration=self._iteration,
                    kind="weight",
                    tensor=layer,
                    reads=reads,
                    fl=quantizer.fraclen.float().mean().item(),
                    batch_fl=float("nan"),
                    clip=float("nan"),
                    zero_share=(output == 0).float().mean().item(),
                )
            )

    def drift(self) -> pd.DataFrame:
        """Where each tensor started, ended and ranged: ``kind, tensor, start, end, low,
        high`` of the activation FL for inputs and of the share of weights rounded to zero
        for layers."""
        rows = []
        for (kind, tensor), steps in self.formats.groupby(["kind", "tensor"], sort=False):
            values = steps.sort_values("iteration")["fl" if kind == "input" else "zero_share"]
            rows.append(
                dict(
                    kind=kind,
                    tensor=tensor,
                    start=values.iloc[0],
                    end=values.iloc[-1],
                    low=values.min(),
                    high=values.max(),
                )
            )
        return pd.DataFrame(rows, columns=["kind", "tensor", "start", "end", "low", "high"])

    def summary(self) -> dict:
        """The walk in a few numbers: how many activation FLs ended below and above where
        they started, the lowest and highest end, the layer that lost the most weights to
        zero (and the share, at its highest), and the loss at the first step and at its
        highest (with the step)."""
        drift = self.drift()
        inputs, weights = drift[drift.kind == "input"], drift[drift.kind == "weight"]
        worst = weights.iloc[int(weights.high.to_numpy().argmax())]
        peak = self.losses.iloc[int(self.losses.loss.to_numpy().argmax())]
        return {
            "fls_down": int((inputs.end < inputs.start).sum()),
            "fls_up": int((inputs.end > inputs.start).sum()),
            "lowest_fl": int(inputs.end.min()),
            "highest_fl": int(inputs.end.max()),
            "most_zero_weights": worst.tensor,
            "zero_share": float(worst.high),
            "first_loss": float(self.losses.loss.iloc[0]),
            "highest_loss": float(peak.loss),
            "highest_loss_step": int(peak.iteration),
        }

    def save(self, folder: str | Path) -> None:
        """Write ``format_trace.csv`` and ``loss_trace.csv`` into ``folder``."""
        folder = Path(folder)
        self.formats.to_csv(folder / FORMATS_CSV, index=False)
        self.losses.to_csv(folder / LOSSES_CSV, index=False)

    @classmethod
    def read(cls, folder: str | Path) -> FormatTrace:
        """A trace written by ``save``."""
        folder = Path(folder)
        losses = pd.read_csv(folder / LOSSES_CSV)
        trace = cls(int(losses.iteration.diff().min()) if len(losses) > 1 else 1)
        trace._formats = pd.read_csv(folder / FORMATS_CSV).to_dict("records")
        trace._losses = losses.to_dict("records")
        return trace


def trace_training(config: RunConfig, out: str | Path, every: int = 2, progress: bool = True) -> FormatTrace:
    """Train ``config`` into ``out`` with a FormatTrace, or read the trace of that run
    when ``out`` already holds it (trained again when its config differs)."""
    out = Path(out)
    if (out / FORMATS_CSV).is_file() and holds_run(out, config):
        return FormatTrace.read(out)
    trace = FormatTrace(every)
    train(config, out, progress=progress, overwrite=True, observer=trace)
    trace.save(out)
    return trace
