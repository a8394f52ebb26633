"""select_fraclen (the training path: tensors, no checks) against choose_fraclen (the
checked path for people), and the EMA tracker's tensor form."""

import pytest
import torch

from f8lab.quant import FraclenEMA, choose_fraclen, select_fraclen
from f8lab.quant.formula import METRICS


@pytest.mark.parametrize("method", METRICS + ("grid",))
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("wl", [8, 6, 4])
def test_equals_the_checked_path(method, signed, wl):
    torch.manual_seed(0)
    for scale in torch.logspace(-3, 2, 12):
        x = torch.randn(2_000) * scale + (0.0 if signed else 0.3 * scale)
        choice = select_fraclen(x, wl, signed, method)
        assert choice.fraclen.dim() == 0 and choice.fraclen.dtype == x.dtype
        assert choice.fraclen.item() == choose_fraclen(x, wl, signed, method)
        assert choice.finite.item()
        per_channel = x.view(20, 100) * torch.logspace(-2, 2, 20).view(20, 1)
        got = select_fraclen(per_channel, wl, signed, method, dim=0).fraclen
        assert got.tolist() == choose_fraclen(per_channel, wl, signed, method, dim=0).tolist()


@pytest.mark.parametrize("method", METRICS + ("grid",))
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_and_inf_are_recorded_not_raised(method, bad):
    x = torch.tensor([0.5, -1.0, bad, 2.0])
    assert not select_fraclen(x, method=method).finite.item()
    with pytest.raises(ValueError, match="NaN or Inf"):
        choose_fraclen(x, method=method)


def test_constant_zero_tensor_gets_the_finest_format():
    for method in METRICS + ("grid",):
        assert select_fraclen(torch.zeros(8), 8, False, method).fraclen.item() == 8


def test_ema_moves_by_tensor_fraclens_like_by_ints():
    by_int, by_tensor = FraclenEMA(init=6), FraclenEMA(init=6)
    for fl in (2, 3, 3, 7, 0, 5):
        by_int.update(fl)
        by_tensor.update(torch.tensor(float(fl)))
    assert torch.equal(by_int.fraclen, by_tensor.fraclen)
    assert by_tensor.value().dtype == torch.float32 and by_tensor.value().item() == int(by_tensor.value())
    assert by_tensor.updates.item() == 6
