"""onnxruntime speed: time exported files side by side, and build the peer a user would
otherwise pick, onnxruntime's own static quantization of the float export."""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from f8lab.export.onnx.run import ort_session


class _Images(CalibrationDataReader):
    def __init__(self, images: np.ndarray) -> None:
        self.items = iter([{"input": image[None].astype(np.float32)} for image in images])

    def get_next(self):
        return next(self.items, None)


def ort_static_quantize(
    float_onnx: str | Path, out: str | Path, images: np.ndarray, reduce_range: bool = False
) -> Path:
    """onnxruntime's quantize_static of an onnx-float file: QDQ, uint8 activations, int8
    weights, per tensor, calibrated on ``images`` (N, C, H, W). ``reduce_range``: 7-bit
    weights, onnxruntime's remedy for the saturation of its uint8 x int8 kernels on x86-64
    without VNNI."""
    with tempfile.TemporaryDirectory() as folder:
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(float_onnx), str(prepared))
        quantize_static(
            str(prepared),
            str(out),
            _Images(images),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=reduce_range,
        )
    return Path(out)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The machine and the CPU flags that pick onnxruntime's 8-bit kernels (avx2,
    avx512_vnni, avx_vnni; on ARM64, asimddp and i8mm), for benchmark records."""
    try:
        words = set(cpuinfo.read_text().split())
    except OSError:
        words = set()
    found = sorted(words & {"avx2", "avx512_vnni", "avx_vnni", "asimddp", "i8mm"})
    return f"{platform.machine()} ({' '.join(found) or 'none of avx2, avx512_vnni, avx_vnni'})"


def time_onnx(
    files: dict[str, str | Path],
    x: np.ndarray,
    repeats: int = 20,
    threads: int = 2,
    block: int = 10,
    settle_s: float = 0.3,
) -> dict[str, float]:
    """Median milliseconds per run of each file on input ``x``.

    The files take turns in blocks of ``block`` timed runs, so a noisy machine slows all of
    them alike. Each block starts with untimed runs for ``settle_s`` seconds: onnxruntime's
    worker threads spin for a while after a run, and the previous session's would
    otherwise share the cores with this one's first runs (measured: with blocks of five
    after two untimed runs, MobileNet V2 at batch 1 timed 3x its steady speed).
    """
    sessions = {label: ort_session(path, threads) for label, path in files.items()}
    feed = {"input": x.astype(np.float32)}
    times: dict[str, list[float]] = {label: [] for label in sessions}
    for _ in range(max(1, -(-repeats // block))):
        for label, s in sessions.items():
            start = time.perf_counter()
            while time.perf_counter() - start < settle_s:
                s.run(None, feed)
            for _ in range(block):
                start = time.perf_counter()
                s.run(None, feed)
                times[label].append(time.perf_counter() - start)
    return {label: 1e3 * statistics.median(t) for label, t in times.items()}
