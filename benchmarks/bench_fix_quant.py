"""fix_quant forward + backward beside torch.fake_quantize_per_tensor_affine (target: ratio <= 1.0).

    python benchmarks/bench_fix_quant.py [--numel 16777216] [--repeats 15]

Both run on the same 16M-element float32 tensor, interleaved, so machine noise hits both
alike; the ratio of the medians is reported.
"""

import argparse
import statistics
import time

import torch

from f8lab.quant import fix_quant

WL, FL, SIGNED = 8, 5, True


def step_fix_quant(x: torch.Tensor) -> None:
    fix_quant(x, WL, FL, SIGNED).sum().backward()


def step_torch(x: torch.Tensor) -> None:
    torch.fake_quantize_per_tensor_affine(x, 2.0**-FL, 0, -127, 127).sum().backward()


def timed(step, x: torch.Tensor) -> float:
    x.grad = None
    start = time.perf_counter()
    step(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=16 * 2**20)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    x = (torch.randn(args.numel) * 2).requires_grad_()
    for step in (step_fix_quant, step_torch):  # warm-up
        timed(step, x)
    ours, theirs = [], []
    for _ in range(args.repeats):
        ours.append(timed(step_fix_quant, x))
        theirs.append(timed(step_torch, x))
    ours_ms, theirs_ms = 1e3 * statistics.median(ours), 1e3 * statistics.median(theirs)
    print(f"tensor: {args.numel:,} float32 elements, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"fix_quant forward+backward:                        {ours_ms:8.1f} ms (median of {args.repeats})")
    print(f"torch.fake_quantize_per_tensor_affine fwd+bwd:     {theirs_ms:8.1f} ms")
    print(f"ratio fix_quant / torch: {ours_ms / theirs_ms:.3f}  (target <= 1.0)")


if __name__ == "__main__":
    main()
