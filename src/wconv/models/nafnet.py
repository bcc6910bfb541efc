"""NAFNet: a nonlinear-activation-free U-Net for image restoration.

Chen, Chu, Zhang, Sun, "Simple Baselines for Image Restoration", ECCV 2022 (arXiv 2204.04676).
Official code: https://github.com/megvii-research/NAFNet.

Which convs ``kernel_size`` changes (the paper's 5×5 study) is the option ``enlarge``:

* ``"spatial"`` (default): the convs that are 3×3 in the published design, i.e. the intro and
  ending convs and the depthwise conv of every block.  FLOPs k5/k3: ×1.18 (``nafnet``), ×1.05
  (``nafnet_width32``).
* ``"all"``: also every stride-1 1×1 conv of a block that works on the feature map (the
  expansion c → 2c, the projection after the mixer and the two FFN convs), at any kernel size:
  a k = 3 net has 3×3 convs there too (6.6× the FLOPs of the ``spatial`` k = 3 net for
  ``nafnet``, 8.2× for ``nafnet_width32``).  FLOPs k5/k3: ×2.72 / ×2.76, near DnCNN's ×2.78.

Under both, the channel attention's 1×1 conv on the pooled vector, the 2×2 stride-2 down convs
and the up-sampling 1×1 conv stay as designed and are plain convs for every conv kind, because a
density needs an odd kernel larger than one tap; every conv that ``kernel_size`` sets is weighted
in a weighted twin (``nafnet``: 11 convs spatial, 47 all).

Which reading the paper's timings support (``benchmarks/wide_kernels.py``, training steps of
batch 16 × 3×64×64 on a 2-core CPU; no GPU measured): its 5×5 NAFNet takes ×4.3 the 3×3 epoch
time (8.92 / 2.08 s), near DnCNN's ×3.9, whose every conv widens.  Here DnCNN measures ×2.2, the
``all`` reading ×2.3 (``nafnet``; width 32 at k = 5 is too slow for this CPU) and the ``spatial``
reading ×1.6 (``nafnet_width32``; FLOPs ×1.05): the ratio favours ``all``.  But ``all`` makes the
3×3 width-32 net 3.6× DnCNN's FLOPs, hard to square with the paper's 3×3 NAFNet epoch (0.86×
DnCNN's), while the published 3×3 design fits it (0.44× the FLOPs, 0.92× the step time here).  So
no reading fits both timings on the published config; the default stays ``spatial`` (the
published design, the literal "3×3 convs replaced by 5×5 ones"), ``all`` is the option.

Initialisation: Kaiming-normal (fan_out) for every conv, as in the weighted convolution paper
(the official code keeps PyTorch's default), identical for standard and weighted twins; β and γ
start at 0, so every block starts as the identity.  Any input size works: the input is padded at
the bottom/right to a multiple of 2^levels (``pad_mode`` zeros as in the official code, or
reflect / replicate) and the output cropped back.  ``nafnet`` is a small config that trains in
minutes; ``nafnet_width32`` is the published SIDD width-32 config (same parameter count as the
official code).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from wconv.models.init import identity_head_, kaiming_init_
from wconv.models.registry import register
from wconv.models.restoration_common import (
    check_pad_mode,
    check_positive,
    check_study_kernel_size,
    pad_input,
    padded_side,
)
from wconv.nn import ConvFactory

ENLARGE: tuple[str, ...] = ("spatial", "all")
"""Readings of ``kernel_size`` (option ``enlarge``): ``spatial`` widens the convs that are 3×3 in
the published design; ``all`` also every stride-1 1×1 conv of the blocks on the feature map."""


def pointwise_kernel(model: str, enlarge: str, kernel_size: int) -> int:
    """The kernel side of a block's feature-map 1×1 convs: 1 (``spatial``) or ``kernel_size``."""
    if enlarge not in ENLARGE:
        raise ValueError(f"{model}: unknown enlarge {enlarge!r}; choose one of {list(ENLARGE)}")
    return kernel_size if enlarge == "all" else 1


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of each pixel: ``(x − μ_c) / sqrt(σ²_c + ε) · w + b``.

    Computed in float32 (bf16 statistics over a few channels are too coarse) and returned in the
    input's dtype; reductions over dim 1 keep a ``channels_last`` input in that layout.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        mean = xf.mean(1, keepdim=True)
        var = (xf - mean).pow(2).mean(1, keepdim=True)
        y = (xf - mean) * torch.rsqrt(var + self.eps)
        y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y.to(x.dtype)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: NAFNet's replacement of GELU."""

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class ChannelAttention(nn.Module):
    """Simplified channel attention: ``x ⊙ (W · avgpool(x) + b)`` with a 1×1 conv ``W``."""

    def __init__(self, conv: ConvFactory, channels: int) -> None:
        super().__init__()
        self.proj = conv(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.proj(x.mean((2, 3), keepdim=True))


class NAFBlock(nn.Module):
    """NAFNet block with ``c`` channels::

        y   = x + β · mixer(dwconv_k×k(conv1×1_{c→2c}(LN(x))))
        out = y + γ · conv1×1_{c→c}(SimpleGate(conv1×1_{c→2c}(LN(y))))

    The default ``mixer`` is SimpleGate → channel attention → 1×1 conv (c → c); CGNet passes its
    global-context mixer instead.  β and γ start at 0, so every block starts as the identity.
    ``min_side`` is the smallest input side the block accepts (CGNet's cascades need more).
    ``pointwise`` is the side of the expansion, projection and FFN convs (1 as published;
    ``kernel_size`` under ``enlarge="all"``, padded to keep the size); the channel attention's
    conv on the pooled vector stays 1×1.
    """

    min_side: int = 1

    def __init__(
        self,
        conv: ConvFactory,
        channels: int,
        kernel_size: int,
        mixer: nn.Module | None = None,
        pointwise: int = 1,
    ) -> None:
        super().__init__()
        hidden = 2 * channels

        def feature_conv(cin: int, cout: int) -> nn.Module:
            return conv(cin, cout, pointwise, padding=pointwise // 2)

        self.norm1 = LayerNorm2d(channels)
        self.expand = feature_conv(channels, hidden)
        self.depthwise = conv(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden)
        if mixer is None:
            mixer = nn.Sequential(
                SimpleGate(), ChannelAttention(conv, channels), feature_conv(channels, channels)
            )
        self.mixer = mixer
        self.norm2 = LayerNorm2d(channels)
        self.ffn = nn.Sequential(
            feature_conv(channels, hidden), SimpleGate(), feature_conv(channels, channels)
        )
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        y = x + self.beta * self.mixer(self.depthwise(self.expand(self.norm1(x))))
        return y + self.gamma * self.ffn(self.norm2(y))


EncoderBlock = Callable[[int, int], nn.Module]
"""``(level, channels) -> block``: builds one encoder block of a level."""


class NAFNet(nn.Module):
    """U-Net of NAF blocks with a global residual: ``out = ending(decoder(encoder(intro(x)))) + x``.

    Level ``l`` of the encoder runs ``enc_blocks[l]`` blocks at ``width · 2^l`` channels and halves
    the resolution with a 2×2 stride-2 conv (doubling the channels); ``middle_blocks`` blocks run at
    the bottom; each decoder level up-samples with a 1×1 conv (c → 2c) and PixelShuffle(2), adds the
    encoder skip and runs ``dec_blocks`` blocks.  Any input size works: the input is padded at the
    bottom/right to a multiple of ``2^levels`` (and to ``min_side``, the largest side any encoder
    block needs, if larger) with ``pad_mode`` and the output is cropped back.  ``enlarge``
    (:data:`ENLARGE`) says which convs ``kernel_size`` sets (module docstring).  Weights:
    :func:`kaiming_init_` (the paper's initialisation, identical for standard and weighted twins);
    β, γ and the norms start at 0 / 1 and the ending conv at 0 (:func:`identity_head_`).
    """

    def __init__(
        self,
        conv: ConvFactory,
        in_channels: int,
        kernel_size: int,
        width: int,
        enc_blocks: Sequence[int],
        middle_blocks: int,
        dec_blocks: Sequence[int],
        pad_mode: str = "zeros",
        encoder_block: EncoderBlock | None = None,
        enlarge: str = "spatial",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        check_study_kernel_size(name, kernel_size)
        pointwise = pointwise_kernel(name, enlarge, kernel_size)
        check_positive(name, in_channels=in_channels, width=width)
        counts = [*enc_blocks, middle_blocks, *dec_blocks]
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in counts):
            raise ValueError(f"{name}: block counts must be integers >= 0, got {counts}")
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError(
                f"{name}: enc_blocks {list(enc_blocks)} and dec_blocks {list(dec_blocks)} need "
                "one entry per level each (same length)"
            )
        self.pad_mode = check_pad_mode(name, pad_mode)

        def naf_block(level: int, channels: int) -> nn.Module:
            return NAFBlock(conv, channels, kernel_size, pointwise=pointwise)

        make_block = encoder_block or naf_block
        pad = kernel_size // 2
        self.intro = conv(in_channels, width, kernel_size, padding=pad)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        channels = width
        for level, count in enumerate(enc_blocks):
            self.encoders.append(
                nn.Sequential(*(make_block(level, channels) for _ in range(count)))
            )
            self.downs.append(conv(channels, 2 * channels, 2, stride=2))
            channels *= 2
        self.middle = nn.Sequential(
            *(
                NAFBlock(conv, channels, kernel_size, pointwise=pointwise)
                for _ in range(middle_blocks)
            )
        )
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for count in dec_blocks:
            self.ups.append(
                nn.Sequential(conv(channels, 2 * channels, 1, bias=False), nn.PixelShuffle(2))
            )
            channels //= 2
            self.decoders.append(
                nn.Sequential(
                    *(
                        NAFBlock(conv, channels, kernel_size, pointwise=pointwise)
                        for _ in range(count)
                    )
                )
            )
        self.ending = conv(width, in_channels, kernel_size, padding=pad)
        self.multiple = 2 ** len(enc_blocks)
        need = max(
            (
                block.min_side * 2**level
                for level, stage in enumerate(self.encoders)
                for block in stage  # type: ignore[attr-defined]
            ),
            default=1,
        )
        self.min_side = padded_side(need, self.multiple, 1)
        kaiming_init_(self)
        identity_head_(self.ending)  # with β = γ = 0 the whole network starts as the identity

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        inp = pad_input(x, self.multiple, self.min_side, self.pad_mode)
        features = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            features = encoder(features)
            skips.append(features)
            features = down(features)
        features = self.middle(features)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
            features = decoder(up(features) + skip)
        return (self.ending(features) + inp)[..., :height, :width]


@register("restoration")
def nafnet(
    conv: ConvFactory,
    in_channels: int = 3,
    kernel_size: int = 3,
    width: int = 16,
    enc_blocks: Sequence[int] = (1, 1, 1, 1),
    middle_blocks: int = 1,
    dec_blocks: Sequence[int] = (1, 1, 1, 1),
    pad_mode: str = "zeros",
    enlarge: str = "spatial",
) -> nn.Module:
    """A small NAFNet (width 16, one block per level, 4 levels) that trains in minutes on a GPU.

    ``kernel_size`` (3 or 5) changes the intro/ending convs and every depthwise conv; with
    ``enlarge="all"`` also the blocks' expansion, projection and FFN convs.
    """
    return NAFNet(
        conv,
        in_channels,
        kernel_size,
        width,
        tuple(enc_blocks),
        middle_blocks,
        tuple(dec_blocks),
        pad_mode,
        enlarge=enlarge,
    )


@register("restoration")
def nafnet_width32(
    conv: ConvFactory,
    in_channels: int = 3,
    kernel_size: int = 3,
    pad_mode: str = "zeros",
    enlarge: str = "spatial",
) -> nn.Module:
    """The published NAFNet-SIDD-width32: width 32, enc [2, 2, 4, 8], middle 12, dec [2, 2, 2, 2].

    ``kernel_size`` (3 or 5) changes the intro/ending convs and every depthwise conv; with
    ``enlarge="all"`` also the blocks' expansion, projection and FFN convs.
    """
    return NAFNet(
        conv,
        in_channels,
        kernel_size,
        32,
        (2, 2, 4, 8),
        12,
        (2, 2, 2, 2),
        pad_mode,
        enlarge=enlarge,
    )
