"""FormatTrace: a run's formats and loss recorded step by step."""

import math

import pytest

from f8lab.analysis import FormatTrace, plot_format_trace, trace_training
from f8lab.models import describe
from f8lab.train import load_config
from f8lab.train import trainer as trainer_module
from helpers import TINY_CONFIG


def tiny(tmp_path, extra=()):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_CONFIG)
    return load_config(path, "default", ["quant.wl=8", *extra])  # 4 steps of 16 images


def test_a_trace_records_every_tracked_input_and_every_layer(tmp_path):
    trace = trace_training(tiny(tmp_path), tmp_path / "run", every=2, progress=False)
    assert trace.losses.iteration.tolist() == [0, 2]
    assert all(math.isfinite(loss) for loss in trace.losses.loss)
    model = trainer_module.make_model(tiny(tmp_path), None)
    table = describe(model)
    weights = trace.formats[trace.formats.kind == "weight"]
    inputs = trace.formats[trace.formats.kind == "input"]
    layers = table[table.tensor == "weight"].layer.tolist()
    assert weights[weights.iteration == 0].tensor.tolist() == layers
    assert set(weights.reads) == set(table[table.tensor == "input"].quantizer)
    assert weights.zero_share.between(0, 1).all()
    # the image's fixed format is not tracked; every other input is, once per step
    tracked = {q for q in table[table.tensor == "input"].quantizer if q != "image"}
    assert set(inputs[inputs.iteration == 2].tensor) == tracked
    assert len(inputs[inputs.iteration == 2]) == len(tracked)
    assert (inputs.fl % 1 == 0).all() and (inputs.batch_fl % 1 == 0).all()
    assert (inputs["clip"] > 0).all()


def test_a_traced_run_is_read_back_not_trained_again(tmp_path, monkeypatch):
    first = trace_training(tiny(tmp_path), tmp_path / "run", every=1, progress=False)
    monkeypatch.setattr("f8lab.analysis.format_trace.train", lambda *a, **k: pytest.fail("trained again"))
    again = trace_training(tiny(tmp_path), tmp_path / "run", every=1, progress=False)
    assert again.every == 1
    assert again.formats.equals(first.formats) and again.losses.equals(first.losses)
    fig = plot_format_trace({"a": first, "b": again})
    assert len(fig.axes) == 1 + 2 * 2 * 2  # the loss, and per run two heatmaps with their bars


def test_every_must_be_positive():
    with pytest.raises(ValueError, match="every must be a positive"):
        FormatTrace(0)


def test_drift_and_summary_read_the_steps():
    trace = FormatTrace(1)
    trace._formats = [
        dict(
            iteration=i,
            kind="input",
            tensor="a",
            reads=None,
            fl=fl,
            batch_fl=fl,
            clip=8.0,
            zero_share=math.nan,
        )
        for i, fl in enumerate([6, 4, 2, 3])
    ] + [
        dict(
            iteration=i,
            kind="weight",
            tensor="conv",
            reads="a",
            fl=7,
            batch_fl=math.nan,
            clip=math.nan,
            zero_share=z,
        )
        for i, z in enumerate([0.1, 0.9, 0.5])
    ]
    trace._losses = [dict(iteration=0, loss=1.0), dict(iteration=1, loss=3.0), dict(iteration=2, loss=2.0)]
    assert trace.summary() == dict(
        fls_down=1,
        fls_up=0,
        lowest_fl=3,
        highest_fl=3,
        most_zero_weights="conv",
        zero_share=0.9,
        first_loss=1.0,
        highest_loss=3.0,
        highest_loss_step=1,
    )
    table = trace.drift().set_index("tensor")
    assert table.loc["a", ["start", "end", "low", "high"]].tolist() == [6, 3, 2, 6]
    assert table.loc["conv", ["start", "end", "low", "high"]].tolist() == [0.1, 0.5, 0.1, 0.9]
