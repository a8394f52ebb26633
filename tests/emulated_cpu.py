"""onnxruntime on an emulated CPU: sessions whose ``run`` happens in a worker process under
``qemu-x86_64 -cpu MODEL`` (QEMU user mode), so that onnxruntime picks the kernels that CPU
model's instruction set gives it. ``Haswell`` has AVX2 and no VNNI: there onnxruntime's
uint8 x int8 kernels saturate pairs of products, as on the many laptops and cloud CPUs of
that kind, whatever CPU runs the tests.

Imported, this module gives ``emulate(cpu)``, which replaces ``onnxruntime.InferenceSession``
until the returned function is called; run as a script (by the worker's qemu), it is the
worker: it reads pickled requests on stdin and writes pickled answers on stdout.
"""

from __future__ import annotations

import pickle
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

QEMU = "qemu-x86_64"
# the CPU features a Haswell has that QEMU's emulator does not: named off to keep it quiet
UNEMULATED = ",-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm"
CARRIED_ENTRIES = ("session.disable_quant_qdq",)  # session config entries the worker repeats


def available() -> str | None:
    """None where the emulator can run this Python, else why not."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"{QEMU} runs x86-64 programs; this machine is {platform.machine()}"
    if shutil.which(QEMU) is None:
        return f"no {QEMU} (Debian: apt-get install qemu-user)"
    return None


def _send(stream: BinaryIO, message: object) -> None:
    data = pickle.dumps(message)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream: BinaryIO) -> object:
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("the emulated onnxruntime worker stopped")
    (size,) = struct.unpack("<Q", header)
    return pickle.loads(stream.read(size))


class _Worker:
    def __init__(self, cpu: str) -> None:
        self.log = tempfile.TemporaryFile()
        command = [
            QEMU,
            "-cpu",
            cpu + (UNEMULATED if cpu.startswith("Haswell") else ""),
            sys.executable,
            str(Path(__file__).resolve()),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log
        )

    def ask(self, request: dict) -> object:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            _send(self.process.stdin, request)
            kind, value = _receive(self.process.stdout)  # type: ignore[misc]
        except (EOFError, BrokenPipeError):
            self.log.seek(0)
            raise RuntimeError(
                "the emulated onnxruntime worker failed:\n" + self.log.read().decode(errors="replace")[-4000:]
            ) from None
        if kind == "error":
            raise RuntimeError(f"onnxruntime on the emulated CPU: {value}")
        return value

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        self.log.close()


def emulate(cpu: str) -> Callable[[], None]:
    """Make every ``onnxruntime.InferenceSession`` run its graphs on the emulated ``cpu``
    (metadata and names still come from a local session). Returns the function that
    restores onnxruntime and stops the worker."""
    import onnxruntime as ort

    local = ort.InferenceSession
    worker = _Worker(cpu)

    class EmulatedSession(local):  # type: ignore[misc, valid-type]
        def __init__(self, model, sess_options=None, providers=None, **kwargs) -> None:
            super().__init__(model, sess_options, providers=providers, **kwargs)
            self._model = model if isinstance(model, bytes) else Path(model).read_bytes()
            self._threads = sess_options.intra_op_num_threads if sess_options is not None else 0
            self._entries = {}
            for key in CARRIED_ENTRIES:
                try:
                    self._entries[key] = sess_options.get_session_config_entry(key)
                except (AttributeError, RuntimeError):
                    pass
            self._id = worker.ask({"load": self._model, "threads": self._threads, "entries": self._entries})

        def run(self, output_names, input_feed, run_options=None):
            return worker.ask({"session": self._id, "outputs": output_names, "feed": input_feed})

    ort.InferenceSession = EmulatedSession

    def restore() -> None:
        ort.InferenceSession = local
        worker.close()

    return restore


def _serve() -> None:
    import onnxruntime as ort

    sessions = []
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request = _receive(requests)
        except EOFError:
            return
        assert isinstance(request, dict)
        try:
            if "load" in request:
                options = ort.SessionOptions()
                options.intra_op_num_threads = request["threads"]
                for key, value in request["entries"].items():
                    options.add_session_config_entry(key, value)
                sessions.append(
                    ort.InferenceSession(request["load"], options, providers=["CPUExecutionProvider"])
                )
                answer: tuple = ("ok", len(sessions) - 1)
            else:
                session = sessions[request["session"]]
                answer = ("ok", session.run(request["outputs"], request["feed"]))
        except Exception as error:  # the test process raises it, with its message
            answer = ("error", f"{type(error).__name__}: {error}")
        _send(answers, answer)


if __name__ == "__main__":
    _serve()
