"""FixConv2d: convolution + BatchNorm folded, with PACT scaling (docs/method.md §4).

    W~ = (γ / σ_B) · W · s_in / s_out        (per output channel; depthwise alike)
    b~ = (β - γ·μ_B / σ_B) / s_out
    y  = conv(Q(u), Q_FLw(W~)) + b~        (b~ rounded to the accumulator grid 2**-(FLx + FLw))

``s_in`` is the scale of the input tensor's ActQuant, ``s_out`` that of the tensor this
layer produces, so ``y`` is already in the next layer's units (in a pass: the input's
``pass_scale()``, the output's ``running_scale()``, the rule of act_quant.py). In training, μ_B and σ_B
are the batch statistics of ``conv(s_in · Q(u), W)`` (an extra convolution, with gradients
through them; biased variance) and the BatchNorm module only updates its running
statistics; in evaluation the running statistics are used.

``bn_fold="running"`` (QuantConfig) trains with one convolution instead (Jacob et al. 2018;
Krishnamoorthi 2018; torch.ao's ConvBn QAT modules): the weight is folded with the
running statistics, ``c = γ / σ_run``,

    z = conv(Q(u), Q(W · c · s_in / s_out))
    y = z · σ_run / σ_B + (β - γ·μ_B / σ_B) / s_out

where μ_B, σ_B are the batch statistics of ``z · s_out / c`` (the pre-BN output in real
units, up to the weight's rounding). In evaluation σ_B = σ_run and the layer is the same
folded layer as with ``bn_fold="batch"``.
"""

from __future__ import annotations

import torch
from torch import nn

from f8lab.nn.act_quant import ActQuant
from f8lab.nn.link import Link
from f8lab.nn.weight_quant import WeightQuant
from f8lab.quant import QuantConfig


class FoldedBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm whose parameters and statistics are used by the FixConv2d before it.

    Its forward passes the tensor through unchanged: the folding happens in the conv.
    Parameter names are BatchNorm2d's, so float checkpoints load as they are.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _ChannelMoments(torch.autograd.Function):
    """Per-channel mean and mean square of an (N, C, H, W) tensor; the gradient is one
    fused pass, ``dL/dy = (g_mean + 2·y·g_square) / n``."""

    @staticmethod
    def forward(ctx, y: torch.Tensor):
        count = y.numel() // y.shape[1]
        ctx.save_for_backward(y)
        ctx.count = count
        return y.sum(dim=(0, 2, 3)) / count, (y * y).sum(dim=(0, 2, 3)) / count

    @staticmethod
    def backward(ctx, grad_mean, grad_square):
        (y,) = ctx.saved_tensors
        shape = (1, -1, 1, 1)
        grad_mean = torch.zeros_like(grad_square) if grad_mean is None else grad_mean
        grad_square = torch.zeros_like(grad_mean) if grad_square is None else grad_square
        return torch.addcmul(
            (grad_mean / ctx.count).view(shape), y, (2.0 / ctx.count * grad_square).view(shape)
        )


def batch_statistics(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, var)`` per channel of an (N, C, H, W) tensor; biased variance."""
    mean, square = _ChannelMoments.apply(y)
    return mean, (square - mean.square()).clamp(min=0)


def _update_running_stats(bn: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
    """BatchNorm's own update: unbiased variance, momentum or cumulative average. New
    tensors, not in-place updates (see ActQuant.forward): the running fold reads them."""
    running_mean, running_var = running_statistics(bn)
    tracked = bn.num_batches_tracked
    assert tracked is not None  # FoldedBatchNorm2d tracks its statistics
    bn.num_batches_tracked = tracked = tracked + 1
    momentum = bn.momentum if bn.momentum is not None else 1.0 / tracked
    bn.running_mean = torch.lerp(running_mean, mean, momentum)  # type: ignore[arg-type]
    bn.running_var = torch.lerp(running_var, var * count / max(count - 1, 1), momentum)  # type: ignore[arg-type]


def running_statistics(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A BatchNorm's running mean and variance (FoldedBatchNorm2d always tracks them)."""
    assert bn.running_mean is not None and bn.running_var is not None
    return bn.running_mean, bn.running_var


class FixConv2d(nn.Conv2d):
    """A fixed-point conv+BN layer: it folds ``bn`` (registered beside it, as torchvision's),
    reads the tensor of ``input_quant`` and writes that of ``output_quant`` (None: logits);
    ``weight_quant`` quantizes the folded weight (None: a ``WeightQuant`` of ``config``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        *,
        config: QuantConfig,
        bn: nn.BatchNorm2d,
        input_quant: ActQuant,
        output_quant: ActQuant | None,
        weight_quant: WeightQuant | None = None,
    ) -> None:
        if groups not in (1, in_channels) or (groups > 1 and out_channels != in_channels):
            raise NotImplementedError(
                f"grouped convolution with groups={groups} ({in_channels} -> {out_channels} "
                "channels) is not supported: only dense (groups=1) and depthwise "
                "(groups = in = out channels) convolutions are"
            )
        if not isinstance(bn, nn.BatchNorm2d):
            raise TypeError(f"FixConv2d folds a BatchNorm2d, got {type(bn).__name__}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False)
        self.bn_fold = config.bn_fold
        self.weight_quant = WeightQuant(config, out_channels) if weight_quant is None else weight_quant
        self._bn = Link(bn)
        self._input_quant = Link(input_quant)
        self._output_quant = None if output_quant is None else Link(output_quant)

    @property
    def batch_norm(self) -> nn.BatchNorm2d:
        """The BatchNorm folded into this conv."""
        return self._bn.module

    @property
    def input_quant(self) -> ActQuant:
        """The quantizer of the tensor this conv reads."""
        return self._input_quant.module

    @property
    def output_quant(self) -> ActQuant | None:
        """The quantizer whose scale this conv's output is folded to (None: logits)."""
        return None if self._output_quant is None else self._output_quant.module

    def scales(self) -> tuple[torch.Tensor, torch.Tensor | float]:
        """``(s_in, s_out)``: the input's scale in this pass and the output's (1: logits)."""
        s_out = self.output_quant.running_scale() if self.output_quant is not None else 1.0
        return self.input_quant.pass_scale(), s_out

    def folded(self, x_q: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The effective weight and bias ``(W~, b~)``; in training, from ``x_q``'s batch statistics."""
        s_in, s_out = self.scales()
        bn = self.batch_norm
        if self.training:
            if x_q is None:
                raise ValueError("a FixConv2d in training folds its batch statistics: pass x_q")
            y = self._conv_forward(x_q, self.weight * s_in, None)  # conv(s_in·Q(u), W): (N, C, H, W)
            mean, var = batch_statistics(y)
            with torch.no_grad():
                _update_running_stats(bn, mean, var, y.numel() // y.shape[1])
        else:
            mean, var = running_statistics(bn)
        gain = bn.weight / torch.sqrt(var + bn.eps)  # γ / σ
        weight = self.weight * (gain * s_in / s_out).view(-1, 1, 1, 1)
        bias = (bn.bias - mean * gain) / s_out
        return weight, bias

    def _forward_running_fold(self, x_q: torch.Tensor) -> torch.Tensor:
        """Training with one convolution: fold the running statistics, correct to the batch's."""
        s_in, s_out = self.scales()
        bn = self.batch_norm
        sigma_running = torch.sqrt(running_statistics(bn)[1] + bn.eps)
        gain = bn.weight / sigma_running  # c = γ / σ_run
        weight = self.weight_quant(self.weight * (gain * s_in / s_out).view(-1, 1, 1, 1))
        z = self._conv_forward(x_q, weight, None)  # (N, C, H, W), c / s_out times the pre-BN output
        mean_z, var_z = batch_statistics(z)
        to_real = s_out / gain
        mean, var = mean_z * to_real, var_z * to_real.square()  # batch statistics, real units
        with torch.no_grad():
            _update_running_stats(bn, mean, var, z.numel() // z.shape[1])
        sigma = torch.sqrt(var + bn.eps)
        bias = self.weight_quant.quantize_bias(
            (bn.bias - bn.weight * mean / sigma) / s_out, self.input_quant.batch_fraclen
        )
        return torch.addcmul(bias.view(1, -1, 1, 1), z, (sigma_running / sigma).view(1, -1, 1, 1))

    def forward(self, x_q: torch.Tensor) -> torch.Tensor:
        if self.training and self.bn_fold == "running":
            return self._forward_running_fold(x_q)
        weight, bias = self.folded(x_q)
        weight = self.weight_quant(weight)
        bias = self.weight_quant.quantize_bias(bias, self.input_quant.batch_fraclen)
        return self._conv_forward(x_q, weight, bias)
