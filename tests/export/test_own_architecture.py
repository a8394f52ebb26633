"""integerize and export_onnx on an architecture that f8lab does not ship: one a user writes
from a LayerKit's layers, defined here."""

import pytest
import torch
from torch import nn

from f8lab.export import OnnxModel, export_onnx, integerize
from f8lab.nn import LayerKit
from f8lab.quant import QuantConfig
from helpers import learn_a_task, pixels

SHAPE = (4, 1, 28, 28)


class TinyResidualNet(nn.Module):
    """image → conv-BN-ReLU → max pool → an identity residual block → a depthwise conv →
    the classifier: every kind of step the integer model has, in a user's own code."""

    def __init__(self, kit: LayerKit, channels: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.image = kit.image_input()
        self.stem_bn, self.stem_act = kit.norm(channels), kit.act()
        self.stem = kit.conv(1, channels, 3, norm=self.stem_bn, reads=self.image, writes=self.stem_act)
        self.pool = nn.MaxPool2d(2)
        # the residual block: its output shares the block input's clipping level
        self.body_bn, self.body_act = kit.norm(channels), kit.act()
        self.body = kit.conv(
            channels, channels, 3, norm=self.body_bn, reads=self.stem_act, writes=self.body_act
        )
        self.sum_act = kit.act(tied_to=self.stem_act)
        self.add = kit.add(out=self.sum_act, identity=self.stem_act)
        self.last_bn = kit.norm(channels)
        self.last = kit.conv(
            channels, channels, 3, norm=self.last_bn, reads=self.body_act, writes=self.add.branch_target
        )
        self.depthwise_bn, self.depthwise_act = kit.norm(channels), kit.act()
        self.depthwise = kit.conv(
            channels,
            channels,
            3,
            2,
            groups=channels,
            norm=self.depthwise_bn,
            reads=self.sum_act,
            writes=self.depthwise_act,
        )
        self.head_pool = kit.global_pool()
        self.classifier = kit.linear(channels, classes, reads=self.depthwise_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stem_act(self.stem_bn(self.stem(self.image(x)))))
        branch = self.last_bn(self.last(self.body_act(self.body_bn(self.body(x)))))
        x = self.sum_act(self.add(branch, x))
        x = self.depthwise_act(self.depthwise_bn(self.depthwise(x)))
        return self.classifier(self.head_pool(x))


def trained(quant: QuantConfig) -> nn.Module:
    torch.manual_seed(0)
    return learn_a_task(TinyResidualNet(LayerKit(quant)), steps=10, shape=SHAPE)


def test_the_float_kit_builds_the_same_network_in_torch_layers():
    float_model = TinyResidualNet(LayerKit())
    fixed = TinyResidualNet(LayerKit(QuantConfig()))
    assert set(float_model.state_dict()) <= set(fixed.state_dict())
    assert float_model(pixels(SHAPE)).shape == (4, 10)


@pytest.mark.parametrize(
    "quant",
    [QuantConfig(), QuantConfig(residual="int8", per_channel=True), QuantConfig(wl=4)],
    ids=["8-bit", "int8-residual", "4-bit"],
)
def test_a_users_architecture_integerizes_and_exports_exactly(quant, tmp_path):
    model = trained(quant)
    x = pixels(SHAPE)
    integer = integerize(model.double(), example_input=x.double())
    with torch.no_grad():
        expected = model(x.double())
    assert torch.equal(integer(x).double() / 2**integer.output_fraclen, expected)
    model = model.float()
    for format in ("onnx-int8", "onnx-integer-float"):
        path = export_onnx(model, tmp_path / f"{format}.onnx", format, example_input=x)
        onnx_model = OnnxModel(path)
        assert onnx_model.arch is None and onnx_model.output_fraclen == integer.output_fraclen
        assert torch.equal(onnx_model(x).to(torch.int64), integer(x).to(torch.int64)), format


def test_a_users_architecture_needs_an_example_input():
    model = trained(QuantConfig())
    with pytest.raises(ValueError, match="integerize needs example_input for a TinyResidualNet"):
        integerize(model)
    with pytest.raises(ValueError, match="export_onnx needs example_input for a TinyResidualNet"):
        export_onnx(model, "unused.onnx")
