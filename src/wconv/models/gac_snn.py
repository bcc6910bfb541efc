"""GAC-SNN: a spiking MS-ResNet with a gated attention coding input layer.

Qiu, Zhu, Chou, Wang, Deng & Li, "Gated Attention Coding for Training High-performance and
Efficient Spiking Neural Networks", AAAI 2024 (https://arxiv.org/abs/2308.06582, official code
https://github.com/bollossom/GAC); the backbone is the membrane-shortcut ResNet of Hu et al.,
"Advancing Spiking Neural Networks towards Deep Residual Learning"
(https://arxiv.org/abs/2112.08954).  Built on plain torch, without a spiking library.

Tensors inside the network are ``(T, B, C, H, W)``; convolutions and BN see ``T·B`` images.

- LIF neuron, per time step: ``u_t = λ·u_{t-1}·(1 − s_{t-1}) + x_t``, ``s_t = H(u_t − θ)`` with
  leak λ = 0.5, threshold θ = 1 and a hard reset to 0; ``H`` is differentiated with the triangle
  surrogate ``∂s/∂u = max(0, γ − |u − θ|) / γ²`` (γ = 1).
- Gated attention coding (the input layer): the image repeated T times goes through a k×k conv
  (3 → 64) + BN, giving ``I``; the layer outputs ``σ(TA(I) ⊙ SCA(I)) ⊙ LIF(I)``.  TA is one weight
  per time step: a shared T → T/2 → T MLP (ReLU, no bias) applied to the average and the maximum of
  ``I`` over (C, H, W), summed.  SCA is 4×4 conv → ReLU → 4×4 conv (64 → 64, 'same' padding).
  Since every time step sees the same image, ``I``, its pooled statistics and SCA are computed
  once and broadcast over T (same result, T times less work).
- Backbone: stages of [3, 3, 2] blocks at widths 128/256/512 and strides 1/2/2; a block is
  ``LIF → conv-BN → LIF → conv-BN`` plus a shortcut of the block input (1×1 conv-BN when the shape
  changes); then LIF → global average pool → linear per time step, averaged over T.

12,679,368 parameters for 100 classes (no conv has a bias).  ``conv="weighted"`` weights the stem
and every k×k backbone conv; the SCA's 4×4 kernels are even and the shortcuts 1×1, so they stay
plain.  ``kernel_size`` sets the stem and backbone convs (3 in the paper).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from wconv.models.classification_common import check_odd_kernel_size, conv_bn
from wconv.models.init import kaiming_init_
from wconv.models.registry import register
from wconv.nn import ConvFactory


class TriangleSpike(torch.autograd.Function):
    """Heaviside step forward (binary spikes); triangle surrogate ``max(0, γ − |v|) / γ²`` backward.

    ``v`` is the membrane potential minus the threshold.
    """

    @staticmethod
    def forward(ctx: Any, v: Tensor, width: float) -> Tensor:
        ctx.save_for_backward(v)
        ctx.width = width
        return (v >= 0).to(v.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        (v,) = ctx.saved_tensors
        width = ctx.width
        return grad_output * (width - v.abs()).clamp(min=0) / (width * width), None


class LIF(nn.Module):
    """Leaky integrate-and-fire neurons over the leading time axis, hard reset (see module doc)."""

    def __init__(self, leak: float, threshold: float, surrogate_width: float) -> None:
        super().__init__()
        self.leak = leak
        self.threshold = threshold
        self.surrogate_width = surrogate_width

    def forward(self, x: Tensor) -> Tensor:
        mem = torch.zeros_like(x[0])
        spike = torch.zeros_like(x[0])
        spikes = []
        for step in x:
            mem = self.leak * mem * (1 - spike) + step
            spike = TriangleSpike.apply(mem - self.threshold, self.surrogate_width)
            spikes.append(spike)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return f"leak={self.leak}, threshold={self.threshold}, width={self.surrogate_width}"


def per_step(module: nn.Module, x: Tensor) -> Tensor:
    """Apply an image module to a ``(T, B, ...)`` tensor by folding time into the batch."""
    return module(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class GatedAttentionCoding(nn.Module):
    """The GAC input layer: ``σ(TA(I) ⊙ SCA(I)) ⊙ LIF(I)`` with ``I = BN(conv(image))``."""

    def __init__(
        self,
        conv: ConvFactory,
        in_channels: int,
        channels: int,
        time_steps: int,
        kernel_size: int,
        lif: dict[str, float],
    ) -> None:
        super().__init__()
        self.time_steps = time_steps
        self.stem = conv_bn(conv, in_channels, channels, kernel_size)
        self.lif = LIF(**lif)
        hidden = max(1, time_steps // 2)
        self.temporal = nn.Sequential(
            nn.Linear(time_steps, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, time_steps, bias=False),
        )
        # 'same' padding for an even 4×4 kernel is one pixel before and two after (what torch's
        # padding="same" does, done explicitly to avoid its extra copy of the input).
        self.spatial = nn.Sequential(
            nn.ZeroPad2d((1, 2, 1, 2)),
            conv(channels, channels, 4, bias=False),
            nn.ReLU(inplace=True),
            nn.ZeroPad2d((1, 2, 1, 2)),
            conv(channels, channels, 4, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        image = self.stem(x)
        steps = self.time_steps
        spikes = self.lif(image.unsqueeze(0).expand(steps, *image.shape))
        # Each step's statistic is the same number (the input is static), seen T times by the MLP.
        avg = image.mean((1, 2, 3)).unsqueeze(1).expand(-1, steps)
        peak = image.amax((1, 2, 3)).unsqueeze(1).expand(-1, steps)
        temporal = (self.temporal(avg) + self.temporal(peak)).t()  # (T, B)
        gate = torch.sigmoid(temporal[:, :, None, None, None] * self.spatial(image))
        return gate * spikes


class MSBlock(nn.Module):
    """Membrane-shortcut block: ``conv-BN(LIF(conv-BN(LIF(x)))) + shortcut(x)``."""

    def __init__(
        self,
        conv: ConvFactory,
        in_channels: int,
        out_channels: int,
        stride: int,
        kernel_size: int,
        lif: dict[str, float],
    ) -> None:
        super().__init__()
        self.lif1 = LIF(**lif)
        self.conv1 = conv_bn(conv, in_channels, out_channels, kernel_size, stride)
        self.lif2 = LIF(**lif)
        self.conv2 = conv_bn(conv, out_channels, out_channels, kernel_size)
        self.shortcut = (
            conv_bn(conv, in_channels, out_channels, 1, stride)
            if stride > 1 or in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        out = per_step(self.conv1, self.lif1(x))
        out = per_step(self.conv2, self.lif2(out))
        return out + per_step(self.shortcut, x)


class GACSNN(nn.Module):
    """GAC input layer → spiking MS-ResNet stages → LIF → pool → linear, averaged over T."""

    def __init__(
        self,
        conv: ConvFactory,
        num_classes: int,
        in_channels: int,
        time_steps: int,
        kernel_size: int,
        lif: dict[str, float],
    ) -> None:
        super().__init__()
        self.coding = GatedAttentionCoding(conv, in_channels, 64, time_steps, kernel_size, lif)
        blocks: list[nn.Module] = []
        channels = 64
        for width, count, stride in ((128, 3, 1), (256, 3, 2), (512, 2, 2)):
            for index in range(count):
                step = stride if index == 0 else 1
                blocks.append(MSBlock(conv, channels, width, step, kernel_size, lif))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.lif = LIF(**lif)
        self.head = nn.Linear(channels, num_classes)
        kaiming_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        spikes = self.lif(self.blocks(self.coding(x)))
        return self.head(spikes.mean((3, 4))).mean(0)


@register("classification")
def gac_snn(
    conv: ConvFactory,
    num_classes: int = 100,
    in_channels: int = 3,
    kernel_size: int = 3,
    time_steps: int = 6,
    leak: float = 0.5,
    threshold: float = 1.0,
    surrogate_width: float = 1.0,
) -> nn.Module:
    """GAC-SNN, MS-ResNet-19 style, T = 6 time steps: 12,679,368 parameters."""
    check_odd_kernel_size("gac_snn", kernel_size)
    if time_steps < 1:
        raise ValueError(f"gac_snn: time_steps must be >= 1, got {time_steps}")
    if not 0 <= leak <= 1:
        raise ValueError(f"gac_snn: leak must be in [0, 1], got {leak}")
    if threshold <= 0 or surrogate_width <= 0:
        raise ValueError(
            f"gac_snn: threshold ({threshold}) and surrogate_width ({surrogate_width}) must be > 0"
        )
    lif = {"leak": leak, "threshold": threshold, "surrogate_width": surrogate_width}
    return GACSNN(conv, num_classes, in_channels, time_steps, kernel_size, lif)
