"""ONNX files of F8Net's layout: the int32 residual path (ConvInteger accumulators and their
adds, ReLUs and max pooling in float64) and the pooled classifier, equal to the integer
model on every CPU (``make test-no-vnni`` runs this file on an emulated AVX2 CPU)."""

import pytest
import torch
from f8net_reference import deterministic_input, deterministic_state, reference

from f8lab.export import OnnxModel, export_onnx, integerize
from f8lab.models.f8net_layout import ZOO
from f8lab.models.f8net_zoo import load_f8net_zoo

# each kind of block, both pools and both stems: ResNet-18 with clipping, MobileNet V1 and
# V2 (signed block inputs, adds without a ReLU, the tail), ResNet-50's shift pool
ROWS = ["res18_8", "mbv1_8", "mbv2b_8", "res50b_8p"]


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("fmt", ["onnx-int8", "onnx-integer-float"])
def test_the_onnx_file_equals_the_integer_model(tmp_path, row, fmt):
    model = load_f8net_zoo(deterministic_state(reference(row)["manifest"]), row).double()
    x = deterministic_input(ZOO[row].normalized_input)
    with torch.no_grad():
        integer = integerize(model, example_input=x[:1])
        want = integer(x)
    path = export_onnx(model, tmp_path / "model.onnx", fmt, example_input=x[:1])
    onnx_model = OnnxModel(path)
    assert onnx_model.output_fraclen == integer.output_fraclen
    assert torch.equal(onnx_model(x.float()).double(), want.double())
