"""The executed copies for reading: text and figures kept, progress bars at their last
state, widgets replaced by a note, figures re-encoded smaller."""

import base64
import io
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from f8lab.analysis.executed import WIDGET, WIDGET_NOTE, main, publish  # noqa: E402


def _figure_png() -> str:
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(range(100), [x * x for x in range(100)])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def test_publish_keeps_the_lesson_and_drops_the_weight(tmp_path, capsys):
    png = _figure_png()
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# a lesson"),
            nbformat.v4.new_code_cell(
                "train()",
                outputs=[
                    nbformat.v4.new_output("stream", name="stderr", text="epoch 1:  10%\repoch 1:  50%"),
                    nbformat.v4.new_output("stream", name="stderr", text="\repoch 1: 100%\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="top-1 91.2%\n"),
                ],
            ),
            nbformat.v4.new_code_cell(
                "explorer()",
                outputs=[
                    nbformat.v4.new_output(
                        "display_data",
                        data={WIDGET: {"model_id": "p"}, "text/plain": "sizes: 100%|##| 15/15"},
                    ),
                    nbformat.v4.new_output(
                        "execute_result", data={WIDGET: {"model_id": "x"}, "text/plain": "VBox(children=())"}
                    ),
                ],
            ),
            nbformat.v4.new_code_cell(
                "plot()",
                outputs=[
                    nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})
                ],
            ),
        ]
    )
    notebook.metadata["widgets"] = {"state": "large"}
    results = tmp_path / "results"
    results.mkdir()
    nbformat.write(notebook, results / "01_lesson.ipynb")
    (results / "01_lesson.json").write_text(json.dumps({"top1": 91.2}))
    (results / "notes.ipynb").write_text("{}")  # not a study notebook: left alone
    main([str(results), str(tmp_path / "executed")])
    assert "01_lesson.ipynb" in capsys.readouterr().out
    out = nbformat.read(tmp_path / "executed" / "01_lesson.ipynb", as_version=4)
    assert out.cells[0].source == "# a lesson" and "widgets" not in out.metadata
    streams = out.cells[1].outputs
    assert [(s.name, s.text) for s in streams] == [("stderr", "epoch 1: 100%\n"), ("stdout", "top-1 91.2%\n")]
    assert [o.text for o in out.cells[2].outputs] == ["sizes: 100%|##| 15/15\n", WIDGET_NOTE + "\n"]
    small = out.cells[3].outputs[0].data["image/png"]
    assert len(small) < len(png)
    original = Image.open(io.BytesIO(base64.b64decode(png)))
    assert Image.open(io.BytesIO(base64.b64decode(small))).size == original.size
    assert json.loads((tmp_path / "executed" / "01_lesson.json").read_text()) == {"top1": 91.2}
    assert not (tmp_path / "executed" / "notes.ipynb").exists()
    with pytest.raises(FileNotFoundError, match="run make demo"):
        publish(tmp_path, tmp_path / "x")  # holds no executed study notebook
