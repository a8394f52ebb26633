"""fix_quant forward + backward beside torch.fake_quantize_per_tensor_affine (target: ratio <= 1.0).

    python benchmarks/bench_fix_quant.py [--numel 16777216] [--repeats 15]

Both run on the same 16M-element float32 tensor, interleaved, so machine noise hits both
alike; the ratio of the medians is reported for a signed (±127) and an unsigned (0..255)
8-bit format.
"""

import argparse
import statistics
import time

import torch

from f8lab.quant import fix_quant, int_range

WL, FL = 8, 5


def step_fix_quant(x: torch.Tensor, signed: bool) -> None:
    fix_quant(x, WL, FL, signed).sum().backward()


def step_torch(x: torch.Tensor, signed: bool) -> None:
    qmin, qmax = int_range(WL, signed)
    torch.fake_quantize_per_tensor_affine(x, 2.0**-FL, 0, qmin, qmax).sum().backward()


def timed(step, x: torch.Tensor, signed: bool) -> float:
    x.grad = None
    start = time.perf_counter()
    step(x, signed)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=16 * 2**20)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    x = (torch.randn(args.numel) * 2).requires_grad_()
    print(
        f"tensor: {args.numel:,} float32 elements, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}"
    )
    for signed in (True, False):
        for step in (step_fix_quant, step_torch):  # warm-up
            timed(step, x, signed)
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(timed(step_fix_quant, x, signed))
            theirs.append(timed(step_torch, x, signed))
        ours_ms, theirs_ms = 1e3 * statistics.median(ours), 1e3 * statistics.median(theirs)
        kind = "signed  " if signed else "unsigned"
        print(
            f"{kind} fix_quant fwd+bwd {ours_ms:7.1f} ms, torch.fake_quantize fwd+bwd "
            f"{theirs_ms:7.1f} ms: ratio {ours_ms / theirs_ms:.3f} (target <= 1.0)"
        )


if __name__ == "__main__":
    main()
