"""The output folder of a run: claimed before training starts, locked while the run writes.

A folder that holds a run is never replaced by accident: training into it needs
``resume`` (continue that run) or ``overwrite`` (delete it first). While a run writes to
a folder it holds an exclusive lock on ``OUT/.lock``, so a second run on the same folder
stops with an error instead of interleaving checkpoints. Temporary files left by a
killed run (``.last.pt.*.tmp``) are removed when the folder is claimed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

RUN_FILES = ("last.pt", "best.pt", "metrics.csv", "fraclens.csv")
LOCK = ".lock"


class RunFolderError(RuntimeError):
    """The output folder cannot be used; the message says why and what to do instead."""


def holds_run(out: Path) -> bool:
    """True when ``out`` holds any file a run writes."""
    return any((Path(out) / name).exists() for name in RUN_FILES)


def _lock(out: Path):
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(out / LOCK, "a+")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise RunFolderError(
            f"cannot write to the output folder {out} ({reason}); choose another --out"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise RunFolderError(
            f"{out} is in use by another run (process {owner}); wait for it to finish or choose another --out"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


@contextlib.contextmanager
def claim_run_folder(out: str | Path, resume: bool = False, overwrite: bool = False) -> Iterator[Path]:
    """Lock ``out`` for one run for as long as the ``with`` block lasts.

    Args:
        out: the output folder; created when missing.
        resume: the run continues the one in ``out``.
        overwrite: delete the run ``out`` holds (if any) and start afresh.

    Raises:
        RunFolderError: ``out`` is a file, lies under a file or cannot be written; another
            run holds it; or it holds a run and neither ``resume`` nor ``overwrite`` is set.
    """
    out = Path(out)
    handle = _lock(out)
    try:
        for stale in out.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        if holds_run(out) and not resume:
            if not overwrite:
                raise RunFolderError(
                    f"{out} holds a run ({', '.join(n for n in RUN_FILES if (out / n).exists())}); "
                    "continue it with --resume, replace it with --overwrite, or choose another --out"
                )
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(out / "tensorboard", ignore_errors=True)
        yield out
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
