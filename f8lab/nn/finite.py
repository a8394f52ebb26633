"""check_finite_formats: the NaN/Inf check of a training step, read once at logging points.

A quantizer cannot choose a format for NaN or Inf. Raising inside the step would make every
step wait on the device, so each quantizer records on the device whether its values were
finite, and the trainer reads all the records at once where it reads the loss.
"""

from __future__ import annotations

import torch
from torch import nn

from f8lab.nn.act_quant import ActQuant
from f8lab.nn.weight_quant import WeightQuant


def check_finite_formats(model: nn.Module) -> None:
    """Raise if any quantizer of ``model`` met NaN or Inf since it was built.

    One read of the device for the whole model; a float model passes at no cost.
    """
    quantizers = [(name, m) for name, m in model.named_modules() if isinstance(m, (ActQuant, WeightQuant))]
    if not quantizers:
        return
    finite = torch.stack([m.finite for _, m in quantizers]).tolist()
    bad = [name for (name, _), ok in zip(quantizers, finite) if not ok]
    if bad:
        raise FloatingPointError(
            f"{len(bad)} quantizer(s) met NaN or Inf values (first: {', '.join(bad[:3])}); a "
            "fixed-point format cannot be chosen for them: lower optim.lr or check the input"
        )
