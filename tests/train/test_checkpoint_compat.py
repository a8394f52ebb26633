"""Checkpoints written by earlier f8lab versions still load and give the same logits.

The files in tests/fixtures were written by main at 36cbca8, before the layers received
their quantizers at construction: a ResNet-18 with the 8-bit residual (its add's own
quantizers, tied clipping levels) and a MobileNet V2 (signed block outputs), both at width
1/16 on 1-channel 28x28 input, calibrated by two training-mode batches. Beside them, the
input and the evaluation logits that code gave.
"""

from pathlib import Path

import pytest
import torch

from f8lab.export import integerize
from f8lab.train.checkpoint import load_model

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_a_checkpoint_of_36cbca8_loads_and_gives_its_logits(name):
    expected = torch.load(FIXTURES / "logits_36cbca8.pt")[name]
    model = load_model(FIXTURES / f"{name}_36cbca8.pt")
    with torch.no_grad():
        assert torch.equal(model(expected["input"]), expected["logits"])
        integer = integerize(model.double())(expected["input"].double())
        assert torch.equal(
            integer / 2.0 ** integerize(model).output_fraclen, model(expected["input"].double())
        )
