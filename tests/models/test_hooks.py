"""forward_hooks: hooks held for one block, removed however it ends."""

import pytest
import torch
from torch import nn

from f8lab.models import forward_hooks


def test_hooks_see_the_pass_and_are_removed_even_on_an_error():
    layers = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    seen, inputs = [], []
    with forward_hooks(layers, lambda m, i, o: seen.append(type(m).__name__)):  # its children
        with forward_hooks([layers[1]], lambda m, i: inputs.append(i[0].shape), pre=True):
            layers(torch.zeros(3, 2))
    assert seen == ["Linear", "ReLU"] and inputs == [(3, 2)]
    with pytest.raises(RuntimeError), forward_hooks(layers, lambda m, i, o: seen.append(m)):
        layers(torch.zeros(3, 5))  # a shape the layer refuses
    layers(torch.zeros(3, 2))
    assert len(seen) == 2 and not layers._forward_hooks and not layers[1]._forward_pre_hooks
