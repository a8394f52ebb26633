"""F8Net's model-zoo files in f8lab: the key mapping against manifests of F8Net's own state
dicts, the layout's logits against F8Net's code, and the integer model's exactness."""

import json
from fractions import Fraction

import pytest
import torch
from f8net_reference import deterministic_input, deterministic_state, reference, references

from f8lab.cli import main
from f8lab.export import integerize
from f8lab.export.integer_ops import round_divide
from f8lab.models.f8net_layout import ZOO, ClampedWeight, F8NetNetwork, F8NetRecipe
from f8lab.models.f8net_zoo import key_map, load_f8net_zoo
from f8lab.nn import ActQuant, FixConv2d
from f8lab.quant import QuantConfig

RECIPE_ROWS = [ref["rows"][0] for ref in references()]
FLOAT_ROWS = [row for row in RECIPE_ROWS if ZOO[row].floating]
FIXED_ROWS = [row for row in RECIPE_ROWS if not ZOO[row].floating]


def _loaded(row: str) -> tuple[F8NetNetwork, torch.Tensor]:
    state = deterministic_state(reference(row)["manifest"])
    return load_f8net_zoo(state, row).double(), deterministic_input(ZOO[row].normalized_input)


def test_every_zoo_row_has_a_reference():
    assert {row for ref in references() for row in ref["rows"]} == set(ZOO)


@pytest.mark.parametrize("row", sorted(ZOO))
def test_the_manifest_maps_with_no_missing_or_unexpected_key(row):
    manifest = reference(row)["manifest"]
    names = key_map(F8NetNetwork(ZOO[row]))
    file_keys = [key.removeprefix("module.") for key, _, _ in manifest]
    assert sorted(file_keys) == sorted(names)
    own = F8NetNetwork(ZOO[row]).state_dict()
    for key, shape, _ in manifest:
        target = names[key.removeprefix("module.")]
        if target is not None:
            assert own[target].numel() == torch.Size(shape).numel(), key


def _f8net_logits(row: str) -> torch.Tensor:
    return torch.tensor(reference(row)["logits"], dtype=torch.float64)


@pytest.mark.parametrize("row", FIXED_ROWS)
def test_the_layout_computes_f8nets_logits(row):
    model, x = _loaded(row)
    with torch.no_grad():
        logits = model(x)
    assert torch.equal(logits, _f8net_logits(row))


@pytest.mark.parametrize("row", FLOAT_ROWS)
def test_the_float_layout_computes_f8nets_float_logits(row):
    """Nothing rounds in F8Net's float model, so float64 sums taken in another order may
    differ in their last bits (seen: 1.7e-14 on logits of size 10)."""
    model, x = _loaded(row)
    with torch.no_grad():
        logits = model(x)
    torch.testing.assert_close(logits, _f8net_logits(row), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("row", FLOAT_ROWS)
def test_the_float_rows_clamp_weights_and_clip_activations_as_f8net_does(row, monkeypatch):
    """On the reference weights both of F8Net's float clamps bind, so the reference checks
    them: folded weights past ±127/128, activations past their clip; without the weight
    clamp the logits are F8Net's no longer."""
    model, x = _loaded(row)
    folded = [m.folded(None)[0] for m in model.modules() if isinstance(m, FixConv2d)]
    assert sum(int((w.abs() > 127 / 128).sum()) for w in folded) > 0
    assert (model.classifier[0].weight.abs() > 127 / 128).any()  # its raw weight, clamped too
    clipped = []
    for quant in model.modules():
        if isinstance(quant, ActQuant) and quant.clipping:
            top = quant.levels() * 2.0 ** -quant.running_fraclen().item()
            quant.register_forward_hook(
                lambda q, args, out, top=top: clipped.append(bool((args[0] > top).any()))
            )
    with torch.no_grad():
        model(x)
        assert sum(clipped) > 0
        monkeypatch.setattr(ClampedWeight, "forward", lambda self, weight: weight)
        unclamped = model(x)
    assert not torch.allclose(unclamped, _f8net_logits(row), rtol=1e-6, atol=1e-6)


def test_entries_f8net_does_not_use_change_nothing_and_the_others_do():
    row = "res18_8"
    manifest = reference(row)["manifest"]
    names = key_map(F8NetNetwork(ZOO[row]))
    unused = [k for k, _, _ in manifest if names[k.removeprefix("module.")] is None]
    # a follower's own alpha (stage_0_layer_1 takes stage_0_layer_0's) and the pixel stem's FL
    assert "module.stage_0_layer_1.body.0.alpha" in unused and "module.head.0.input_fraclen" in unused
    x = deterministic_input(False)

    def logits(changed: list[str]) -> torch.Tensor:
        state = deterministic_state(manifest)
        for key in changed:
            state[key] = state[key] + 1.0
        with torch.no_grad():
            return load_f8net_zoo(state, row).double()(x)

    base = logits([])
    assert torch.equal(logits(unused), base)
    assert not torch.equal(logits(["module.stage_0_layer_0.body.0.alpha"]), base)
    assert not torch.equal(logits(["module.stage_0_layer_1.body.1.input_fraclen"]), base)


def test_a_file_of_another_network_is_refused_naming_its_keys():
    state = deterministic_state(reference("res50b_8p")["manifest"])
    with pytest.raises(
        ValueError,
        match=r"res18_8 network \(resnet18\) \(an F8Net 8-bit resnet50 file\? try row res50b_8p\): 264 un",
    ):
        load_f8net_zoo(state, "res18_8")
    state = deterministic_state(reference("res18_32")["manifest"])
    with pytest.raises(ValueError, match=r"\(an F8Net float resnet18 file\? try row res18_32\): 21 missing"):
        load_f8net_zoo(state, "res18_8")  # the float file has no FL buffers
    state = deterministic_state(reference("res18_8")["manifest"])
    del state["module.stage_1_layer_0.shortcut.0.conv.weight"]
    state["module.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"shortcut\.0\.conv\.weight.*extra\.weight"):
        load_f8net_zoo(state, "res18_8")
    state = deterministic_state(reference("res18_8")["manifest"])
    with pytest.raises(
        ValueError, match="has 1000 classes where 10 are asked for: .* model.num_classes: 1000"
    ):
        load_f8net_zoo(state, "res18_8", num_classes=10)
    state["module.head.0.conv.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"\(resnet18\): 1 shape mismatch") as refused:
        load_f8net_zoo(state, "res18_8")
    assert "try row" not in str(refused.value)  # the keys are the row's: no other row to try
    with pytest.raises(
        ValueError, match="unknown F8Net model-zoo row 'res34'; choose one of res18_32, mbv1_32"
    ):
        load_f8net_zoo(state, "res34")
    with pytest.raises(ValueError, match="arch: 'resnet34' is not one of resnet18, resnet50, mobilenet_v1"):
        F8NetRecipe("resnet34")


@pytest.mark.parametrize("row", FIXED_ROWS)
def test_the_integer_model_equals_the_layout_bit_for_bit(row):
    model, x = _loaded(row)
    with torch.no_grad():
        fake = model(x)
        integer = integerize(model, example_input=x[:1])
        out = integer(x)
    assert out.dtype == torch.int32
    assert torch.equal(out.double() / 2**integer.output_fraclen, fake)


def test_round_divide_rounds_half_to_even_exactly():
    g = torch.Generator().manual_seed(0)
    numerators = torch.cat([torch.randint(-(2**40), 2**40, (2000,), generator=g), torch.arange(-200, 200)])
    for denominator in (1, 2, 49, 64, 98):
        got = round_divide(numerators, denominator)
        want = [round(Fraction(int(n), denominator)) for n in numerators]  # Python: half to even
        assert got.tolist() == want


def _zoo_file(folder, row: str):
    """A file as F8Net's model zoo holds the network of ``row`` (deterministic weights)."""
    path = folder / f"{row}.pth"
    torch.save({"model": deterministic_state(reference(row)["manifest"])}, path)
    return path


@pytest.fixture
def zoo_file(tmp_path):
    return _zoo_file(tmp_path, "res18_8")


QUICK = ["--config", "configs/imagenet/resnet18_f8.yaml", "--profile", "quick"]
QUICK_FLOAT = ["--config", "configs/imagenet/resnet18_fp.yaml", "--profile", "quick"]


def _eval(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    main(["eval", *argv])
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_f8lab_eval_and_export_run_a_zoo_file_every_form_alike(capsys, zoo_file, tmp_path):
    """On random weights the classes come out at chance; the forms must agree on each one."""
    figures = {}
    for mode in ("fake", "integer", "onnx"):
        result = _eval(capsys, [str(zoo_file), "--f8net", "res18_8", *QUICK, "--mode", mode])
        assert result["mode"] == mode and result["n"] == 16
        figures[mode] = (result["top1"], result["top5"])
    out = tmp_path / "res18_8.onnx"
    main(["export", str(zoo_file), "--f8net", "res18_8", *QUICK, "--out", str(out)])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["out"] == str(out)
    figures["file"] = tuple(_eval(capsys, [str(out)])[key] for key in ("top1", "top5"))
    assert len(set(figures.values())) == 1, figures


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--mode", "float"],
            "--mode float: F8Net's res18_8 is one of its 8-bit files: it evaluates with --mode fake",
        ),
        (["--set", "data.normalize=true"], "F8Net's res18_8 reads pixels: use data.normalize: false"),
        ([], "--f8net needs --config"),
    ],
)
def test_f8lab_eval_refuses_a_zoo_file_it_cannot_run_as_asked(capsys, zoo_file, extra, message):
    argv = [
        "eval",
        str(zoo_file),
        "--f8net",
        "res18_8",
        *(QUICK if "--config" not in message else []),
        *extra,
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_zoo_file_without_f8net_and_an_f8lab_file_with_it_are_refused(capsys, zoo_file, tmp_path):
    with pytest.raises(SystemExit):
        main(["eval", str(zoo_file), *QUICK])
    assert f"f8lab eval {zoo_file} --f8net ROW --config CONFIG" in capsys.readouterr().err
    not_f8net = tmp_path / "other.pt"
    torch.save({"model": {"conv1.weight": torch.zeros(1)}}, not_f8net)
    with pytest.raises(SystemExit):
        main(["eval", str(not_f8net), "--f8net", "res18_8", *QUICK])
    assert "is not a file of F8Net's code" in capsys.readouterr().err


def test_f8lab_eval_runs_a_float_zoo_file_in_float_mode_and_refuses_the_rest(capsys, tmp_path):
    path = _zoo_file(tmp_path, "res18_32")
    result = _eval(capsys, [str(path), "--f8net", "res18_32", *QUICK_FLOAT])
    assert result["mode"] == "float" and result["n"] == 16
    refusals = [
        (
            ["eval", "--mode", "fake"],
            "--mode fake: F8Net's res18_32 is one of its float files: it evaluates with --mode float",
        ),
        (["export", "--out", str(tmp_path / "x.onnx")], "f8lab exports F8Net's 8-bit files only (res18_8, "),
    ]
    for (command, *extra), message in refusals:
        with pytest.raises(SystemExit) as exit_info:
            main([command, str(path), "--f8net", "res18_32", *QUICK_FLOAT, *extra])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_a_float_row_has_no_integer_form():
    model, x = _loaded("res18_32")
    with pytest.raises(ValueError, match="a floating-mode model has no integer form"):
        integerize(model, example_input=x[:1])


def test_clamped_weight_clamps_each_channel_at_its_own_format():
    clamp = ClampedWeight(QuantConfig(per_channel=True, fraclen_method="fixed", floating=True), 2)
    clamp.fraclen = torch.tensor([7, 5])
    weight = torch.tensor([[0.5, 2.0, -9.0], [0.5, 2.0, -9.0]]).view(2, 3, 1, 1)
    want = torch.tensor([[0.5, 127 / 128, -127 / 128], [0.5, 2.0, -127 / 32]]).view(2, 3, 1, 1)
    assert torch.equal(clamp(weight), want)  # not rounded: 0.5 and 2.0 stay
