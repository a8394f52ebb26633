"""The four architectures: torchvision compatibility, float equivalence, sharing, formats."""

from copy import deepcopy

import pytest
import torch
import torchvision

from f8lab.models import build_model, describe, from_float, list_models, load_float_state_dict
from f8lab.quant import QuantConfig, fraclen_range

SHAPES = {"imagenet": (2, 3, 224, 224), "small": (2, 1, 28, 28)}
CASES = [(name, stem) for name in ["resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2"] for stem in SHAPES]


def small_float(name: str, stem: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, 10, stem=stem, in_channels=SHAPES[stem][1], width=0.25)
    model.train()
    with torch.no_grad():  # give BN some running statistics
        model(torch.rand(SHAPES[stem]))
    return model.eval()


def test_list_models():
    assert list_models() == ["mobilenet_v1", "mobilenet_v2", "resnet18", "resnet50"]


@pytest.mark.parametrize(
    "name,count",
    [
        ("resnet18", 11_689_512),
        ("resnet50", 25_557_032),
        ("mobilenet_v2", 3_504_872),
        ("mobilenet_v1", 4_231_976),
    ],
)
def test_parameter_counts(name, count):
    assert sum(p.numel() for p in build_model(name).parameters()) == count


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_torchvision_state_dicts_load_strictly(name):
    reference = getattr(torchvision.models, name)().eval()
    model = build_model(name).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.rand(1, 3, 224, 224)
    assert torch.equal(model(x), reference(x))
    fixed = from_float(model, QuantConfig())
    load_float_state_dict(fixed, reference.state_dict())


@pytest.mark.parametrize("name,stem", CASES)
def test_floating_without_clipping_is_the_float_model(name, stem):
    float_model = small_float(name, stem)
    fixed = from_float(float_model, QuantConfig(floating=True, clipping=False)).eval()
    x = torch.rand(SHAPES[stem])
    expected = float_model(x)
    torch.testing.assert_close(fixed(x), expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())


@pytest.mark.parametrize("name,stem", CASES)
def test_forward_backward_and_formats(name, stem):
    model = from_float(small_float(name, stem), QuantConfig())
    model.train()
    for _ in range(2):
        model(torch.rand(SHAPES[stem])).square().mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        logits = model(torch.rand(SHAPES[stem]))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    table = describe(model)
    for row in table.itertuples():
        lo, hi = fraclen_range(row.wl, row.signed)
        for fl in row.fl if isinstance(row.fl, list) else [row.fl]:
            assert isinstance(fl, int) and lo <= fl <= hi


def test_a_trained_model_can_be_copied():
    model = from_float(small_float("resnet18", "small"), QuantConfig())
    model.train()
    model(torch.rand(SHAPES["small"])).sum().backward()
    copy = deepcopy(model).eval()
    x = torch.rand(SHAPES["small"])
    assert torch.equal(copy(x), model.eval()(x))


def test_per_channel_weight_formats():
    model = from_float(
        small_float("mobilenet_v2", "small"), QuantConfig(per_channel=True, fraclen_method="grid")
    )
    model.train()
    model(torch.rand(SHAPES["small"]))
    weights = describe(model).query("tensor == 'weight'")
    assert all(isinstance(fl, list) and len(fl) > 1 for fl in weights.fl)


def test_master_and_readers():
    model = build_model("resnet18", 10, quant=QuantConfig(), stem="small", in_channels=1, width=0.25)
    # layer1 is made of identity blocks: the stem output, both block outputs and
    # layer2's first block (conv1 and projection) share the stem quantizer's α
    chain = [model.act1, model.layer1[0].act_out, model.layer1[1].act_out]
    assert all(q.master is model.act1 for q in chain)
    assert model.layer1[0].act1.master is model.layer1[0].act1  # inside a block: its own α
    assert model.layer2[0].act_out.master is model.layer2[0].act_out  # after a projection
    model.act1.alpha.data.fill_(3.5)
    model.layer1[0].act_out.ema.fraclen.fill_(2.0)
    model.layer1[1].act_out.ema.fraclen.fill_(4.0)
    table = describe(model).set_index(["layer", "tensor"])
    for layer in ["layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer2.0.downsample.0"]:
        assert table.loc[(layer, "input"), "alpha"] == 3.5
        assert table.loc[(layer, "input"), "master"] == "act1"
    assert table.loc[("layer1.0.conv1", "input"), "fl"] == 6
    assert table.loc[("layer1.1.conv1", "input"), "fl"] == 2
    assert table.loc[("layer2.0.conv1", "input"), "fl"] == 4
    alphas = [k for k in model.state_dict() if k.endswith("alpha")]
    assert "act1.alpha" in alphas and "layer1.0.act_out.alpha" not in alphas


def test_identity_path_scales_differ_by_a_power_of_two():
    model = from_float(small_float("resnet18", "small"), QuantConfig())
    model.train()
    for _ in range(3):
        model(torch.rand(SHAPES["small"]))
    ratio = (model.act1.running_scale() / model.layer1[1].act_out.running_scale()).item()
    assert ratio == 2.0 ** round(torch.log2(torch.tensor(ratio)).item())


def test_without_sharing_every_tensor_has_its_own_alpha():
    model = build_model(
        "resnet18", 10, quant=QuantConfig(share_clipping=False), stem="small", in_channels=1, width=0.25
    )
    assert model.layer1[1].act_out.master is model.layer1[1].act_out


@pytest.mark.parametrize(
    "call,error,message",
    [
        (
            lambda: build_model("resnet34"),
            ValueError,
            "unknown model 'resnet34'; choose one of mobilenet_v1, mobilenet_v2, resnet18, resnet50",
        ),
        (
            lambda: build_model("resnet18", stem="cifar"),
            ValueError,
            "stem: 'cifar' is not one of imagenet, small",
        ),
        (lambda: build_model("resnet18", width=0), ValueError, r"width: must be positive, got 0\.0"),
        (lambda: build_model("resnet18", quant={"bits": 8}), TypeError, "QuantConfig"),
        (lambda: describe(build_model("resnet18")), ValueError, "fixed-point model"),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_state_dict_that_does_not_fit_names_keys():
    model = build_model("resnet18", 10, stem="small", in_channels=1)
    state = torchvision.models.resnet18().state_dict()
    mismatch = r"shape mismatch\(es\) .*first: conv1.weight \(64, 3, 7, 7\) vs \(64, 1, 3, 3\)"
    with pytest.raises(ValueError, match=mismatch):
        load_float_state_dict(model, state)
    state = build_model("resnet18").state_dict()
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="1 unexpected key\\(s\\), first: extra.weight"):
        load_float_state_dict(build_model("resnet18"), state)
    del state["extra.weight"], state["fc.bias"]
    with pytest.raises(ValueError, match="1 missing key\\(s\\), first: fc.bias"):
        load_float_state_dict(build_model("resnet18"), state)


def test_from_float_refuses_a_fixed_point_model():
    fixed = build_model("resnet18", quant=QuantConfig())
    with pytest.raises(ValueError, match="already fixed point"):
        from_float(fixed, QuantConfig())
