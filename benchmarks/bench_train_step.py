"""One training step of the fixed-point ResNet-18 beside the float one (target: ratio <= 2.0),
and beside the peer: torch.ao's quantization-aware training of the same float model.

    python benchmarks/bench_train_step.py [--width 0.25] [--batch 128] [--repeats 10]

Small stem, Fashion-MNIST shape (1x28x28), SGD with Nesterov momentum; the three models
alternate step by step in one run, and the ratios of the median step times are reported.
torch.ao's QAT is prepared the usual way: conv-BN(-ReLU) fused with fuse_modules_qat,
the default x86 QAT qconfig, prepare_qat.
"""

import argparse
import statistics
import time

import copy

import torch
from torch import nn
from torch.ao import quantization as ao

from f8lab.models import build_model, from_float
from f8lab.models.resnet import ResNet
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


def torch_ao_qat(float_model: ResNet) -> nn.Module:
    """torch.ao's QAT of an f8lab float ResNet: fused conv-BN(-ReLU), fake quantization."""
    model = copy.deepcopy(float_model).train()
    groups = [["conv1", "bn1", "act1"]]
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        for i, block in enumerate(getattr(model, stage)):
            prefix = f"{stage}.{i}"
            groups += [[f"{prefix}.conv1", f"{prefix}.bn1", f"{prefix}.act1"],
                       [f"{prefix}.conv2", f"{prefix}.bn2"]]
            if block.downsample is not None:
                groups.append([f"{prefix}.downsample.0", f"{prefix}.downsample.1"])
    model = ao.fuse_modules_qat(model, groups)
    model.qconfig = ao.get_default_qat_qconfig("x86")
    return ao.prepare_qat(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 1, 28, 28)).float() / 256
    labels = torch.randint(0, 10, (args.batch,))
    float_model = build_model("resnet18", 10, stem="small", in_channels=1, width=args.width)
    steps = {"float": make_step(float_model, images, labels),
             "f8lab fixed-point": make_step(from_float(float_model, QuantConfig()), images, labels),
             "torch.ao QAT": make_step(torch_ao_qat(float_model), images, labels)}
    times = {name: [] for name in steps}
    for name, step in steps.items():  # warm-up
        step()
    for _ in range(args.repeats):
        for name, step in steps.items():
            times[name].append(step())
    medians = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    print(f"resnet18 small stem, width {args.width}, batch {args.batch}x1x28x28, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    for name, ms in medians.items():
        print(f"{name:18s} training step: {ms:8.1f} ms (median of {args.repeats}), "
              f"{ms / medians['float']:.2f}x float")
    print("target: f8lab fixed-point <= 2.0x float")


if __name__ == "__main__":
    main()
