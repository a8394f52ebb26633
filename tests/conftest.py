"""pytest options: ``--onnxruntime-cpu MODEL`` runs every onnxruntime session of the suite on
an emulated CPU (see emulated_cpu.py; ``make test-no-vnni`` passes ``Haswell``)."""

import contextlib

import pytest

import emulated_cpu
from f8lab.export.onnx.run import int8_weights_saturate


def pytest_addoption(parser):
    parser.addoption(
        "--onnxruntime-cpu",
        default=None,
        metavar="MODEL",
        help="run onnxruntime's kernels on this emulated CPU model (qemu-x86_64 "
        "-cpu MODEL), e.g. Haswell: AVX2 without VNNI",
    )


@contextlib.contextmanager
def _emulated(cpu: str):
    restore = emulated_cpu.emulate(cpu)
    int8_weights_saturate.cache_clear()  # the probe measures the emulated CPU
    try:
        yield cpu
    finally:
        restore()
        int8_weights_saturate.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def onnxruntime_cpu(request):
    cpu = request.config.getoption("--onnxruntime-cpu")
    if cpu is None:
        yield None
        return
    why_not = emulated_cpu.available()
    if why_not is not None:
        raise pytest.UsageError(f"--onnxruntime-cpu {cpu}: {why_not}")
    with _emulated(cpu):
        yield cpu


@pytest.fixture
def haswell(onnxruntime_cpu):
    """onnxruntime on an emulated Haswell (AVX2, no VNNI) for one test."""
    if onnxruntime_cpu is not None:
        yield onnxruntime_cpu
        return
    why_not = emulated_cpu.available()
    if why_not is not None:
        pytest.skip(why_not)
    with _emulated("Haswell") as cpu:
        yield cpu
