"""ONNX export: valid files, named and batch-dynamic, bit-exact in onnxruntime."""

import json

import onnx
import pytest
import torch

from f8lab.export import OnnxModel, export_onnx, integerize
from f8lab.export.onnx_export import _float_model
from f8lab.models import build_model

from test_integerize import calibrated, pixels, shifted_block_outputs

NAMES = ["resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("format", ["onnx-int8", "onnx-integer-float"])
def test_integer_formats_equal_the_integer_model(name, format, tmp_path):
    model = calibrated(name, "small")
    path = export_onnx(model, tmp_path / "m.onnx", format)
    onnx_model = OnnxModel(path)
    x = pixels((5, 1, 28, 28))
    expected = integerize(model)(x)
    out = onnx_model(x)
    assert torch.equal(out.to(torch.int64), expected.to(torch.int64))
    assert onnx_model.output_fraclen == integerize(model).output_fraclen


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
@pytest.mark.parametrize("format", ["onnx-int8", "onnx-integer-float"])
def test_exact_when_the_sum_and_identity_formats_differ(name, format, tmp_path):
    model = shifted_block_outputs(calibrated(name, "small"))
    x = pixels((5, 1, 28, 28))
    out = OnnxModel(export_onnx(model, tmp_path / "m.onnx", format))(x)
    assert torch.equal(out.to(torch.int64), integerize(model)(x).to(torch.int64))


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_float_format_matches_the_float_network(name, tmp_path):
    model = calibrated(name, "small")
    path = export_onnx(model, tmp_path / "f.onnx", "onnx-float")
    x = pixels((2, 1, 28, 28))
    with torch.no_grad():
        expected = _float_model(model)(x)
    torch.testing.assert_close(OnnxModel(path)(x), expected, rtol=1e-4, atol=1e-5)


def test_imagenet_stem_int8_is_exact(tmp_path):
    model = calibrated("mobilenet_v2", "imagenet")
    path = export_onnx(model, tmp_path / "m.onnx")
    x = pixels((1, 3, 224, 224))
    assert torch.equal(OnnxModel(path)(x).long(), integerize(model)(x).long())


def test_files_are_valid_named_dynamic_and_documented(tmp_path):
    model = calibrated("resnet18", "small")
    for format in ("onnx-int8", "onnx-integer-float", "onnx-float"):
        path = export_onnx(model, tmp_path / f"{format}.onnx", format, metadata={"note": "x"})
        loaded = onnx.load(path)
        onnx.checker.check_model(loaded, full_check=True)
        assert [i.name for i in loaded.graph.input] == ["input"]
        assert [o.name for o in loaded.graph.output] == ["logits"]
        assert loaded.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        props = {p.key: p.value for p in loaded.metadata_props}
        assert props["format"] == format and props["note"] == "x"
        assert props["input_convention"].startswith("pixels/256")
        assert json.loads(props["arch"])["name"] == "resnet18"
        for batch in (1, 4):
            assert OnnxModel(path)(pixels((batch, 1, 28, 28))).shape == (batch, 10)
    props = {p.key: p.value for p in onnx.load(tmp_path / "onnx-int8.onnx").metadata_props}
    assert {"layer", "fl_in", "fl_w", "shift"} <= set(json.loads(props["layers"])[0])


def test_int8_graph_uses_integer_kernels(tmp_path):
    path = export_onnx(calibrated("resnet18", "small"), tmp_path / "m.onnx")
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert {"QLinearConv", "ConvInteger", "QuantizeLinear"} <= ops
    assert "Conv" not in ops


def test_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="choose one of onnx-int8"):
        export_onnx(calibrated("resnet18", "small"), tmp_path / "m.onnx", "tflite")
    with pytest.raises(ValueError, match="needs a fixed-point model"):
        export_onnx(build_model("resnet18").eval(), tmp_path / "m.onnx", "onnx-int8")
    uncalibrated = build_model("resnet18", 10, stem="small", in_channels=1, width=0.25,
                               quant=calibrated("resnet18", "small").quant).eval()
    with pytest.raises(ValueError, match="never calibrated"):
        export_onnx(uncalibrated, tmp_path / "m.onnx")
