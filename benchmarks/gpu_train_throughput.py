"""Training speed on a GPU: the ImageNet shape and the study model, float, f8lab's two BN
folds (eager and compiled) and torch.ao QAT.

    python benchmarks/gpu_train_throughput.py [--steps 20] [--batch 256] [--no-compile]

1. ImageNet shape: ResNet-18, ``--batch`` x 3 x 224 x 224, 1000 classes: images per second
   and step time over float for each row (the rows take turns step by step; each step
   ends with a CUDA synchronisation).
2. The study model (ResNet-18 small stem, width 0.25, batch 128 x 1 x 28 x 28): step time,
   the GPU's busy time per step (kernel time from torch.profiler) and the host
   synchronisations per step (``torch.cuda.set_sync_debug_mode("warn")``).
Targets: fixed point <= 2x float on the study model; ImageNet-shape ``batch`` fold <= 2.0x,
``running`` fold <= torch.ao's ratio; 0 host synchronisations per step.
"""

import argparse
import warnings

import torch
from bench_train_step import contenders, make_step, report, time_steps
from torch.autograd import DeviceType

from f8lab.models import build_model


def gpu_busy_ms(step, steps: int) -> float:
    """Kernel time per step on the GPU, from torch.profiler."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
        for _ in range(steps):
            step()
    kernels = [e for e in profile.key_averages() if e.device_type == DeviceType.CUDA]
    return sum(e.self_device_time_total for e in kernels) / 1e3 / steps


def host_syncs(step, steps: int) -> float:
    """Host synchronisations per step (each one warns in "warn" sync-debug mode); the
    synchronisation the benchmark itself makes at the end of a step is not counted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(steps):
                step(synchronize=False)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught) / steps


def study_model(compile_models: bool, steps: int) -> None:
    device = torch.device("cuda")
    images = torch.randint(0, 256, (128, 1, 28, 28), device=device).float() / 256
    labels = torch.randint(0, 10, (128,), device=device)
    float_model = build_model("resnet18", 10, stem="small", in_channels=1, width=0.25).to(device)
    rows = contenders(float_model, compile_models)
    medians = time_steps(rows, images, labels, steps)
    print("\nstudy model: resnet18 small stem, width 0.25, batch 128x1x28x28")
    report(medians, steps)
    for name, (model, compiled) in rows.items():
        step = make_step(model, images, labels, compiled)
        step()
        torch.cuda.synchronize()
        print(
            f"{name:30s} GPU busy {gpu_busy_ms(step, steps):6.2f} ms/step, "
            f"host syncs {host_syncs(step, steps):5.1f}/step",
            flush=True,
        )


def imagenet_shape(batch: int, compile_models: bool, steps: int) -> None:
    device = torch.device("cuda")
    images = torch.randint(0, 256, (batch, 3, 224, 224), device=device).float() / 256
    labels = torch.randint(0, 1000, (batch,), device=device)
    float_model = build_model("resnet18").to(device)
    medians = time_steps(contenders(float_model, compile_models), images, labels, steps)
    print(f"\nImageNet shape: resnet18, batch {batch}x3x224x224")
    report(medians, steps)
    for name, ms in medians.items():
        print(f"{name:30s} {batch / ms * 1e3:8.0f} images/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--no-compile", action="store_true", help="eager rows only")
    parser.add_argument("--part", choices=["all", "study", "imagenet"], default="all")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device; this benchmark needs a GPU")
    torch.backends.cudnn.benchmark = True
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    if args.part in ("all", "study"):
        study_model(not args.no_compile, args.steps)
    if args.part in ("all", "imagenet"):
        imagenet_shape(args.batch, not args.no_compile, args.steps)


if __name__ == "__main__":
    main()
