"""Executed notebooks to read without running: a study's executed copies and records,
made small for the repository (``make demo`` runs it after the default study).

    python -m f8lab.analysis.executed results/default notebooks/executed

Each notebook keeps its text, tables and figures; a progress bar keeps only its last state;
an explorer, which needs a kernel, is replaced by a line saying so (a progress-bar widget
by its text); figures are stored with a
palette of 256 colours (a plot has far fewer), which makes them a third of the size.
"""

from __future__ import annotations

import argparse
import base64
import io
import re
import shutil
from pathlib import Path

import nbformat
from PIL import Image

NOTEBOOK = re.compile(r"^\d\d_.*\.ipynb$")
WIDGET = "application/vnd.jupyter.widget-view+json"
EXPLORER_BOXES = ("VBox(", "HBox(")
WIDGET_NOTE = "(an interactive explorer: open this notebook in JupyterLab, `make lab`, to use it)"


def _last_state(text: str) -> str:
    """A stream's text as a terminal would leave it: of each line rewritten with carriage
    returns, the last version."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def _small_png(data: str) -> str:
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    buffer = io.BytesIO()
    image.convert("RGB").quantize(256).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode() if buffer.tell() < len(data) * 3 // 4 else data


def _outputs(outputs: list) -> list:
    kept: list = []
    for output in outputs:
        if output.output_type == "stream":
            if kept and kept[-1].output_type == "stream" and kept[-1].name == output.name:
                kept[-1].text += output.text
            else:
                kept.append(output)
            continue
        data = output.get("data", {})
        if WIDGET in data:  # an explorer (a box of controls) or a progress bar
            plain = data.get("text/plain", "")
            text = WIDGET_NOTE if plain.startswith(EXPLORER_BOXES) else plain
            kept.append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))
            continue
        if "image/png" in data:
            data["image/png"] = _small_png(data["image/png"])
        kept.append(output)
    for output in kept:
        if output.output_type == "stream":
            output.text = _last_state(output.text)
    return kept


def publish(results: Path, target: Path) -> list[Path]:
    """Write the executed notebooks of ``results`` (and each one's JSON record) to
    ``target``, made small; returns the notebooks written."""
    notebooks = sorted(p for p in results.iterdir() if NOTEBOOK.match(p.name))
    if not notebooks:
        raise FileNotFoundError(f"no executed notebooks in {results}: run make demo first")
    target.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        notebook.metadata.pop("widgets", None)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs = _outputs(cell.outputs)
        nbformat.write(notebook, target / path.name)
        record = path.with_suffix(".json")
        if record.is_file():
            shutil.copyfile(record, target / record.name)
    return [target / p.name for p in notebooks]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a study's results folder (results/default)")
    parser.add_argument("target", type=Path, help="where the small copies go (notebooks/executed)")
    args = parser.parse_args(argv)
    for path in publish(args.results, args.target):
        print(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
