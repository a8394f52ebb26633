"""Training throughput on a GPU: ImageNet-shape ResNet-18, float and 8-bit fixed point.

    python benchmarks/gpu_train_throughput.py [--steps 50] [--batch 256] [--model resnet18]

Synthetic data (batch x 3 x 224 x 224, 1000 classes), SGD with Nesterov momentum; after
5 warm-up steps, times ``--steps`` steps of each model (CUDA-synchronised) and prints
images per second for both and their ratio.
"""

import argparse
import time

import torch
from torch import nn

from f8lab.models import build_model, from_float
from f8lab.quant import QuantConfig


def images_per_second(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                      steps: int, warmup: int = 5) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            torch.cuda.synchronize()
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), labels).backward()
        optimizer.step()
    torch.cuda.synchronize()
    return steps * len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device; this benchmark needs a GPU")
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    images = torch.randint(0, 256, (args.batch, 3, 224, 224), device=device).float() / 256
    labels = torch.randint(0, 1000, (args.batch,), device=device)
    float_model = build_model(args.model).to(device)
    fixed_model = from_float(float_model, QuantConfig()).to(device)
    fp = images_per_second(float_model, images, labels, args.steps)
    f8 = images_per_second(fixed_model, images, labels, args.steps)
    print(f"{torch.cuda.get_device_name()}, {args.model}, batch {args.batch}x3x224x224, "
          f"{args.steps} steps, torch {torch.__version__}")
    print(f"float        {fp:8.0f} images/s")
    print(f"fixed-point  {f8:8.0f} images/s  ({fp / f8:.2f}x the float step time)")


if __name__ == "__main__":
    main()
