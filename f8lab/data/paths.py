"""Where f8lab keeps data sets (``$F8LAB_DATA``, else ``data/`` in a checkout, else
``~/.f8lab/data``), and the error raised when one is missing or damaged."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_root() -> Path:
    """The folder that holds f8lab's data sets."""
    if os.environ.get("F8LAB_DATA"):
        return Path(os.environ["F8LAB_DATA"]).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        return checkout / "data"
    return Path.home() / ".f8lab" / "data"


class DataError(RuntimeError):
    """A data set is missing or damaged; the message says which file and what fixes it."""
