"""Derive the formula's coefficient table for word lengths 2..16 and write it into f8lab.quant.

    python -m f8lab.analysis.coefficients            # rewrites f8lab/quant/fraclen_coefficients.json

The published 8-bit coefficients are kept beside the derived ones; ``f8lab.quant.coefficient``
reads the file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from f8lab.analysis.fraclen_study import PAPER_SAMPLES, derive_coefficients
from f8lab.quant.formats import MAX_WORD_LENGTH, MIN_WORD_LENGTH
from f8lab.quant.formula import TABLE_FILE

PUBLISHED = {
    "8": {"signed": {"std": 40, "mean": 30, "rms": 40}, "unsigned": {"std": 70, "mean": 30, "rms": 50}}
}
SEEDS = (0, 1, 2, 3)
TABLE_PATH = Path(__file__).resolve().parents[1] / "quant" / TABLE_FILE


def derive_entry(wl: int) -> dict:
    """``{"signed"|"unsigned": {metric: C}}`` for one word length, C to 4 significant digits."""
    entry = {}
    for kind in ("signed", "unsigned"):
        fits = derive_coefficients(wl, kind == "signed", seeds=SEEDS)
        entry[kind] = {metric: float(f"{c:.4g}") for metric, c in fits.items()}
    return entry


def derive_table(word_lengths: range = range(MIN_WORD_LENGTH, MAX_WORD_LENGTH + 1)) -> dict:
    """The whole table, as stored in the package."""
    derived = {str(wl): derive_entry(wl) for wl in tqdm(word_lengths, desc="word lengths")}
    return {
        "procedure": (
            f"sigma = logspace(-3, 3, 1000), {PAPER_SAMPLES} samples per sigma, "
            f"geometric mean of C over seeds {list(SEEDS)}; "
            "python -m f8lab.analysis.coefficients"
        ),
        "published": PUBLISHED,
        "derived": derived,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TABLE_PATH, help="where to write the table")
    args = parser.parse_args()
    args.out.write_text(json.dumps(derive_table(), indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
