"""One training step of the fixed-point ResNet-18 beside the float one (target: ratio <= 2.0).

    python benchmarks/bench_train_step.py [--model resnet18] [--width 0.25] [--batch 128] [--repeats 10]

Small stem, Fashion-MNIST shape (1x28x28), SGD with momentum; the two models alternate
step by step in one run, and the ratio of the median step times is reported.
"""

import argparse
import statistics
import time

import torch
from torch import nn

from f8lab.models import build_model, from_float
from f8lab.quant import QuantConfig


def make_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss()
    model.train()

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), labels).backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 1, 28, 28)).float() / 256
    labels = torch.randint(0, 10, (args.batch,))
    float_model = build_model(args.model, 10, stem="small", in_channels=1, width=args.width)
    fixed_model = from_float(float_model, QuantConfig())
    steps = {"float": make_step(float_model, images, labels),
             "fixed-point": make_step(fixed_model, images, labels)}
    times = {name: [] for name in steps}
    for name, step in steps.items():  # warm-up
        step()
    for _ in range(args.repeats):
        for name, step in steps.items():
            times[name].append(step())
    medians = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    print(f"{args.model} small stem, width {args.width}, batch {args.batch}x1x28x28, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    for name, ms in medians.items():
        print(f"{name:12s} training step: {ms:8.1f} ms (median of {args.repeats})")
    print(f"ratio fixed-point / float: {medians['fixed-point'] / medians['float']:.2f}  (target <= 2.0)")


if __name__ == "__main__":
    main()
