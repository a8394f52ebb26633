"""ONNX export: valid files, named and batch-dynamic, bit-exact in onnxruntime."""

import json
import warnings
from functools import partial

import onnx
import pytest
import torch

from f8lab.export import OnnxModel, export_onnx, integerize
from f8lab.export.integer_ops import IntAdd, IntConv2d
from f8lab.export.onnx.int8 import WEIGHT_INPUT, kernel_weights, pairs_fit_int16
from f8lab.export.onnx.run import int8_weights_saturate
from f8lab.export.onnx.writer import float_network_of
from f8lab.models import build_model, from_float
from f8lab.quant import QuantConfig
from helpers import calibrated, pixels, shifted_block_outputs, trained_like

NAMES = ["resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2"]


def exact_here(weights: str) -> None:
    """Skip a test of int8 weights where onnxruntime's uint8 x int8 kernels saturate."""
    if weights == "s8" and int8_weights_saturate():
        pytest.skip(
            "onnxruntime's uint8 x int8 kernels saturate pairs of products on this CPU "
            "(x86-64 without VNNI): weights='s8' is not exact here"
        )


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
        expected = float_network_of(model)(x)
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


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
@pytest.mark.parametrize(
    "quant",
    [QuantConfig(per_channel=True, fraclen_method="grid"), QuantConfig(signed_input=True)],
    ids=["per-channel", "signed-input"],
)
def test_int8_is_exact_with_per_channel_weights_and_signed_input(name, quant, tmp_path):
    model = calibrated(name, "small", quant)
    x = pixels((5, 1, 28, 28)) - (0.5 if quant.signed_input else 0)
    out = OnnxModel(export_onnx(model, tmp_path / "m.onnx"))(x)
    assert torch.equal(out.to(torch.int64), integerize(model)(x).to(torch.int64))


@pytest.mark.parametrize("bits", [4, 6, 8])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("weights", ["portable", "s8"])
def test_int8_is_exact_at_every_word_length_on_trained_formats(bits, per_channel, weights, tmp_path):
    """Below 8 bits the uint8 carrier is wider than the format: saturation must be at the
    format's limit, which trained formats reach (calibrated ones rarely do). Trained 8-bit
    weights reach 127 beside 255s: int8 weights are exact only where the CPU's kernels
    add the products in 32 bits."""
    exact_here(weights)
    model = trained_like("resnet18", QuantConfig(wl=bits, per_channel=per_channel))
    x = pixels((32, 1, 28, 28))
    expected = integerize(model)(x).to(torch.int64)
    assert len(set(map(tuple, expected.tolist()))) > 16  # the inputs give different logits
    files = {"onnx-int8": export_onnx(model, tmp_path / "int8.onnx", weights=weights)}
    if weights == "portable":
        files["onnx-integer-float"] = export_onnx(model, tmp_path / "if.onnx", "onnx-integer-float")
    for format, path in files.items():
        assert torch.equal(OnnxModel(path)(x).to(torch.int64), expected), format


@pytest.mark.parametrize("stem,width", [("small", 0.25), ("small", 0.35), ("imagenet", 0.25)])
def test_mobilenet_v2_with_a_mixed_signedness_residual_exports_exactly(stem, width, tmp_path):
    torch.manual_seed(0)
    shape = (2, 1, 28, 28) if stem == "small" else (1, 3, 224, 224)
    float_model = build_model("mobilenet_v2", 10, stem=stem, in_channels=shape[1], width=width)
    model = from_float(float_model.train(), QuantConfig()).train()
    with torch.no_grad():
        model(pixels(shape))
    model.eval()
    x = pixels(shape)
    expected = integerize(model)(x).to(torch.int64)
    with torch.no_grad():
        fake = model.double()(x.double())
    assert torch.equal(expected.double() / 2 ** integerize(model).output_fraclen, fake)
    for format in ("onnx-int8", "onnx-integer-float"):
        out = OnnxModel(export_onnx(model, tmp_path / f"{format}.onnx", format))(x)
        assert torch.equal(out.to(torch.int64), expected), format


@pytest.mark.parametrize("plain", [False, True], ids=["OnnxModel", "default-session"])
def test_int8_float_path_is_exact(plain, tmp_path):
    """Residual convs on the float path (here ResNet-50's, its sums two FLs coarser than
    their identity inputs) compute the same integers, in f8lab's session and in a plain
    onnxruntime session (the float Convs' weights then stay behind DequantizeLinear)."""
    import onnxruntime as ort

    model = shifted_block_outputs(calibrated("resnet50", "small"), 2)
    path = export_onnx(model, tmp_path / "m.onnx")
    assert any(node.op_type == "Conv" for node in onnx.load(path).graph.node)
    x = pixels((5, 1, 28, 28))
    if plain:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        out = torch.from_numpy(session.run(["logits"], {"input": x.numpy()})[0])
    else:
        out = OnnxModel(path)(x)
    assert torch.equal(out.to(torch.int64), integerize(model)(x).to(torch.int64))


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    return readers


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
@pytest.mark.parametrize("by", [0, 1])
@pytest.mark.parametrize("weights", ["portable", "s8"])
def test_int8_graph_runs_8_bit_convolutions_and_exact_adds(name, by, weights, tmp_path):
    """Every convolution is a QLinearConv, except where a residual add needs accumulators
    and its shortcut cannot join the branch's QLinearConv as extra input channels: there
    QDQ (DequantizeLinear of the uint8 input, int8 weights and int32 bias) around a float
    Conv whose output goes straight into the Add. With portable weights, a convolution
    whose own weights fit ±64 takes its shortcut in taps of ±64: twice the copies."""
    model = shifted_block_outputs(calibrated(name, "small"), by)
    graph = onnx.load(export_onnx(model, tmp_path / "m.onnx", weights=weights)).graph
    ops = [node.op_type for node in graph.node]
    producer = {node.output[0]: node for node in graph.node}
    dtypes = {init.name: init.data_type for init in graph.initializer}
    readers = _consumers(graph)
    convs = [node for node in graph.node if node.op_type == "Conv"]
    for conv in convs:
        x, w, b = (producer[name] for name in conv.input)
        assert {x.op_type, w.op_type, b.op_type} == {"DequantizeLinear"}
        assert dtypes[w.input[0]] == onnx.TensorProto.INT8
        assert dtypes[b.input[0]] == onnx.TensorProto.INT32
        assert [r.op_type for r in readers[conv.output[0]]] == ["Add"]
    joined = [
        node
        for node in graph.node
        if node.op_type == "Concat"  # not the classifier's
        and readers[node.output[0]][0].op_type != "MatMulInteger"
    ]
    for concat in joined:
        assert [r.op_type for r in readers[concat.output[0]]] == ["QLinearConv"]
        assert len(set(concat.input[1:])) == 1  # copies of one tensor: 255 - u, or a projection's input
    float_adds = {r.output[0] for conv in convs for r in readers[conv.output[0]]}
    integer = integerize(model)
    assert len(joined) + len(float_adds) == sum(isinstance(m, IntAdd) for m in integer.modules())
    n_convs = sum(isinstance(m, IntConv2d) for m in integer.modules())
    projections_inside = sum(producer[c.input[-1]].op_type != "Sub" for c in joined)
    assert ops.count("QLinearConv") + len(convs) + projections_inside == n_convs
    assert "ConvInteger" not in ops
    if name == "mobilenet_v2":  # every identity shortcut joins its convolution
        assert not convs
        copies = max(len(c.input) - 1 for c in joined)  # copies of it
        assert copies == (4 if by else 1) if weights == "s8" else copies in ((4, 8) if by else (1, 2))
    if name == "resnet18" and not by:
        assert not convs and projections_inside == 3


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
@pytest.mark.parametrize("trained", [False, True], ids=["calibrated", "trained-like"])
def test_8_bit_residual_exports_as_the_plain_graph_runtimes_expect(name, trained, tmp_path):
    """residual="int8": QLinearConv for every convolution, QLinearAdd for every residual
    add, no float Conv and no extra channels; both integer formats equal the integer model."""
    quant = QuantConfig(residual="int8", wl=6 if trained else 8)
    model = trained_like(name, quant) if trained else calibrated(name, "small", quant)
    path = export_onnx(model, tmp_path / "m.onnx")
    graph = onnx.load(path).graph
    ops = [node.op_type for node in graph.node]
    integer = integerize(model)
    assert ops.count("QLinearConv") == sum(isinstance(m, IntConv2d) for m in integer.modules())
    assert ops.count("QLinearAdd") == sum(isinstance(m, IntAdd) for m in integer.modules())
    assert not {"Conv", "DequantizeLinear"} & set(ops)
    readers = _consumers(graph)
    assert not [
        n
        for n in graph.node
        if n.op_type == "Concat"  # no shortcut channels
        and any(r.op_type == "QLinearConv" for r in readers[n.output[0]])
    ]
    x = pixels((16, 1, 28, 28))
    expected = integer(x).to(torch.int64)
    assert torch.equal(OnnxModel(path)(x).to(torch.int64), expected)
    out = OnnxModel(export_onnx(model, tmp_path / "f.onnx", "onnx-integer-float"))(x)
    assert torch.equal(out.to(torch.int64), expected)


def test_split_taps_sum_back_and_fit():
    import numpy as np

    from f8lab.export.onnx.int8 import split_taps

    rng = np.random.default_rng(0)
    matrix = rng.integers(-1000, 1001, (7, 5))
    for copies in (1, 3, 8, 16):
        parts = split_taps(matrix, copies)
        assert parts.shape == (copies, 7, 5)
        assert np.array_equal(parts.sum(axis=0), matrix)
        assert np.all(np.abs(parts) <= -(-np.abs(matrix) // copies))
    assert np.array_equal(split_taps(np.full((2, 2), -512), 4), np.full((4, 2, 2), -128))


def test_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="choose one of onnx-int8"):
        export_onnx(calibrated("resnet18", "small"), tmp_path / "m.onnx", "tflite")
    with pytest.raises(ValueError, match="needs a fixed-point model"):
        export_onnx(build_model("resnet18").eval(), tmp_path / "m.onnx", "onnx-int8")
    uncalibrated = build_model(
        "resnet18", 10, stem="small", in_channels=1, width=0.25, quant=calibrated("resnet18", "small").quant
    ).eval()
    with pytest.raises(ValueError, match="never calibrated"):
        export_onnx(uncalibrated, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="12-bit model exports as onnx-integer-float"):
        export_onnx(calibrated("resnet18", "small", QuantConfig(wl=12)), tmp_path / "m.onnx")


def test_pairs_fit_int16_at_its_limit():
    """255 * (64 + 64) = 32,640 fits int16; 255 * (64 + 65) = 32,895 does not."""
    import numpy as np

    weight = np.zeros((3, 4, 3, 3), np.int64)
    weight[:, 0, 0, 0], weight[:, 2, 1, 1] = 64, -64
    assert pairs_fit_int16(weight)
    weight[1, 3, 2, 2] = 65  # one output channel's two largest: 65 and 64
    assert not pairs_fit_int16(weight)
    assert pairs_fit_int16(np.array([[128]])) and not pairs_fit_int16(np.array([[129]]))


@pytest.mark.parametrize(
    "name,quant",
    [
        ("resnet18", QuantConfig()),
        ("resnet18", QuantConfig(per_channel=True, fraclen_method="grid")),
        ("resnet50", QuantConfig()),
        ("mobilenet_v2", QuantConfig(residual="int8")),
        ("mobilenet_v2", QuantConfig(wl=6)),
    ],
    ids=["resnet18", "per-channel", "resnet50", "add8", "6-bit"],
)
def test_default_file_gives_no_kernel_int8_weights_a_pair_can_saturate(name, quant, tmp_path):
    """On any CPU: in the default file, a QLinearConv or MatMulInteger has int8 weights
    only where 255 times each output's two largest |w| fits int16 (so no pair of uint8 x
    int8 products saturates), uint8 weights with zero point 128 elsewhere; weights="u8"
    gives every kernel uint8 weights, weights="s8" int8 ones."""
    import numpy as np

    model = shifted_block_outputs(trained_like(name, quant), 1)
    kinds = {}
    for weights in ("portable", "u8", "s8"):
        graph = onnx.load(export_onnx(model, tmp_path / f"{weights}.onnx", weights=weights)).graph
        kinds[weights] = []
        for node, tensor in kernel_weights(graph):
            values = onnx.numpy_helper.to_array(tensor).astype(np.int64)
            if node.op_type == "MatMulInteger":
                values = values.T  # (C, classes) stored: outputs first
            zero_name = node.input[WEIGHT_INPUT[node.op_type] + 2]  # the weights' zero point
            zero = onnx.numpy_helper.to_array(next(t for t in graph.initializer if t.name == zero_name))
            if tensor.data_type == onnx.TensorProto.INT8:
                assert np.all(zero == 0)
                top_two = np.sort(np.abs(values.reshape(len(values), -1)), axis=1)[:, -2:].sum(axis=1)
                assert weights == "s8" or 255 * top_two.max() <= 2**15 - 1, node.name
            else:
                assert tensor.data_type == onnx.TensorProto.UINT8 and np.all(zero == 128)
            kinds[weights].append(tensor.data_type)
    assert set(kinds["u8"]) == {onnx.TensorProto.UINT8} and set(kinds["s8"]) == {onnx.TensorProto.INT8}
    assert len(kinds["u8"]) == len(kinds["portable"]) == len(kinds["s8"])


def test_default_file_is_exact_where_int8_kernels_saturate(haswell, tmp_path):
    """On an emulated AVX2 CPU without VNNI, whose uint8 x int8 kernels saturate pairs of
    products: the probe sees it, a trained 8-bit model's int8-weight file differs from the
    integer model (and warns), the default file equals it, its classifier included."""
    assert int8_weights_saturate()
    model = trained_like("resnet18", QuantConfig())
    x = pixels((16, 1, 28, 28))
    expected = integerize(model)(x).to(torch.int64)
    with pytest.warns(UserWarning, match="weights='portable'"):
        fast = OnnxModel(export_onnx(model, tmp_path / "s8.onnx", weights="s8"))
    assert not torch.equal(fast(x).to(torch.int64), expected)
    assert torch.equal(OnnxModel(export_onnx(model, tmp_path / "m.onnx"))(x).to(torch.int64), expected)


def test_int8_weight_files_warn_where_the_kernels_saturate(tmp_path, monkeypatch):
    import f8lab.export.onnx.run as onnx_run

    model = calibrated("resnet18", "small")
    files = {w: export_onnx(model, tmp_path / f"{w}.onnx", weights=w) for w in ("portable", "s8")}
    monkeypatch.setattr(onnx_run, "int8_weights_saturate", lambda: True)
    with pytest.warns(UserWarning, match="saturate pairs of products"):
        OnnxModel(files["s8"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OnnxModel(files["portable"])
    with pytest.raises(ValueError, match="unknown weights 'int4'; choose one of portable"):
        export_onnx(model, tmp_path / "m.onnx", weights="int4")


@pytest.mark.parametrize(
    "signed, pool_size, per_class_fraclen",
    [(False, 49, False), (True, 49, True), (False, 1, True), (True, 300, True)],
)
@pytest.mark.parametrize("weights", ["portable", "s8"])
def test_int8_classifier_equals_the_integer_one_at_its_extremes(
    signed, pool_size, per_class_fraclen, weights
):
    """onnx-int8's classifier (base-256 digits of the H·W sums times the weights in
    MatMulInteger), and the float64 one it falls back on, give the integer model's logits
    exactly, with every input at the largest or smallest value and weights of one sign,
    where the sums pass 2**8 and the products 2**24."""
    exact_here(weights)
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from f8lab.export.integer_ops import Fixed, IntLinear
    from f8lab.export.onnx.graph import Form, Graph, Sym
    from f8lab.export.onnx.int8 import emitters
    from f8lab.export.onnx.integer_steps import linear

    generator = torch.Generator().manual_seed(0)
    classes, channels, side = 10, 96, int(pool_size**0.5)
    side_w = pool_size // side
    weight = torch.randint(-127, 128, (classes, channels), generator=generator)
    weight[0], weight[1] = 127, -127
    bias = torch.randint(-(2**20), 2**20, (classes,), generator=generator)
    weight_fraclen = (
        torch.randint(5, 7, (classes,), generator=generator) if per_class_fraclen else torch.tensor(6)
    )
    layer = IntLinear(weight, bias, weight_fraclen, input_fraclen=4, pool_size=side * side_w)
    low, high = (-127, 127) if signed else (0, 255)
    values = torch.randint(low, high + 1, (5, channels, side, side_w), generator=generator)
    values[0], values[1] = high, low
    u = (values + (128 if signed else 0)).numpy().astype(np.uint8)
    expected = layer(Fixed(values.double(), 4))
    assert 2**24 < expected.values.abs().max() < 2**31 - 1 or pool_size == 1
    # the int8 target's classifier, and the float64 one it falls back on past its ranges
    for emit, integer_kernel in (
        (emitters(weights)[IntLinear], True),
        (partial(linear, carrier=TensorProto.DOUBLE), False),
    ):
        graph = Graph()
        out = emit(layer, graph, Sym("u", 4, Form.Q8, signed))
        assert any(node.op_type == "MatMulInteger" for node in graph.nodes) == integer_kernel
        graph.nodes.append(helper.make_node("Identity", [out.name], ["y"]))
        model = helper.make_model(
            helper.make_graph(
                graph.nodes,
                "g",
                [helper.make_tensor_value_info("u", TensorProto.UINT8, None)],
                [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)],
                graph.initializers,
            ),
            opset_imports=[helper.make_opsetid("", 17)],
        )
        model.ir_version = 8
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        assert np.array_equal(session.run(None, {"u": u})[0], expected.values.numpy())
