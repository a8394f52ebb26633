"""Training-step time of f8lab's fixed-point ResNet-18 over the float one, beside the peer
(torch.ao's quantization-aware training of the same float model), eager and compiled.

    python benchmarks/bench_train_step.py [--width 0.25] [--batch 128] [--repeats 10] [--no-compile]
                                          [--channels-last]

Small stem, Fashion-MNIST shape (1x28x28), SGD with Nesterov momentum. Rows: float, f8lab
with the two BN folds (``batch``: F8Net's two convolutions; ``running``: one convolution),
each eager and through torch.compile, and torch.ao QAT (``f8lab.baselines``: conv-BN(-ReLU)
fused, 8-bit moving-average min/max fake quantizers, notebook 05's baseline). Compiled models are compiled
and warmed up first; then every model takes one step in turn, ``--repeats`` times, and the
medians are compared. ``--channels-last`` puts every model and the images in that layout
(what the trainer does on the CPU by default). Targets: f8lab ``batch`` <= 2.0x float,
``running`` <= torch.ao's ratio.
"""

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from f8lab.baselines import AffineConfig, prepare_affine_qat
from f8lab.models import build_model, from_float
from f8lab.quant import QuantConfig


def make_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, compile_model: bool):
    """A function that runs one training step of ``model`` and returns its wall time; by
    default it waits for the device at the end of the step (a no-op on the CPU)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    net = torch.compile(model) if compile_model else model

    def step(synchronize: bool = True) -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(net(images), labels).backward()
        optimizer.step()
        if images.is_cuda and synchronize:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return step


def contenders(float_model: nn.Module, compile_models: bool) -> dict[str, tuple[nn.Module, bool]]:
    """Name -> (model, compiled?) for every row of the comparison."""
    rows = {"float": (float_model, False)}
    for fold in ("batch", "running"):
        rows[f"f8lab {fold} fold"] = (from_float(float_model, QuantConfig(bn_fold=fold)), False)
    rows["torch.ao QAT"] = (prepare_affine_qat(float_model, AffineConfig()), False)
    if compile_models:
        rows["float, compiled"] = (copy.deepcopy(float_model), True)
        for fold in ("batch", "running"):
            rows[f"f8lab {fold} fold, compiled"] = (from_float(float_model, QuantConfig(bn_fold=fold)), True)
    return rows


def time_steps(
    rows: dict[str, tuple[nn.Module, bool]], images: torch.Tensor, labels: torch.Tensor, repeats: int
) -> dict[str, float]:
    """Median step time in ms of each row, the rows taking turns step by step; a compiled
    row whose compilation fails is reported and dropped from ``rows``."""
    steps = {}
    for name, (model, compiled) in list(rows.items()):
        step = make_step(model, images, labels, compiled)
        start = time.perf_counter()
        try:
            for _ in range(3):  # compiles the compiled ones, warms up the rest
                step()
        except Exception as error:  # a compiler failure costs its row, not the run
            if not compiled:
                raise
            print(
                f"  {name}: compilation failed ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200]}); row dropped",
                flush=True,
            )
            del rows[name]
            continue
        steps[name] = step
        print(f"  warm-up of {name}: {time.perf_counter() - start:.1f} s", flush=True)
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(step())
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def report(medians: dict[str, float], repeats: int) -> None:
    for name, ms in medians.items():
        line = f"{name:30s} {ms:8.1f} ms  {ms / medians['float']:5.2f}x float"
        if name.endswith("compiled") and "float, compiled" in medians:
            line += f"  {ms / medians['float, compiled']:5.2f}x compiled float"
        print(line)
    print(
        f"(median of {repeats} steps each; targets: f8lab batch fold <= 2.0x float, "
        "running fold <= torch.ao QAT's ratio)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true", help="eager rows only")
    parser.add_argument(
        "--channels-last", action="store_true", help="every model and the images in channels_last"
    )
    args = parser.parse_args()
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.manual_seed(0)
    images = (torch.randint(0, 256, (args.batch, 1, 28, 28)).float() / 256).contiguous(memory_format=layout)
    labels = torch.randint(0, 10, (args.batch,))
    float_model = build_model("resnet18", 10, stem="small", in_channels=1, width=args.width)
    print(
        f"resnet18 small stem, width {args.width}, batch {args.batch}x1x28x28, "
        f"{'channels_last' if args.channels_last else 'contiguous'}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        flush=True,
    )
    rows = {
        name: (model.to(memory_format=layout), compiled)
        for name, (model, compiled) in contenders(float_model, not args.no_compile).items()
    }
    report(time_steps(rows, images, labels, args.repeats), args.repeats)


if __name__ == "__main__":
    main()
