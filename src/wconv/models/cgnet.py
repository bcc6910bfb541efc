"""CGNet (CascadedGaze): a NAFNet whose encoder blocks gather global context with a conv cascade.

Ghasemabadi, Janjua, Salameh, Niu, "CascadedGaze: Efficiency in Global Context Extraction for Image
Restoration", TMLR 2024 (arXiv 2401.15235).  Official code:
https://github.com/Ascend-Research/CascadedGaze.

The network is :class:`~wconv.models.nafnet.NAFNet` with :class:`CascadedGazeBlock` as encoder
block; middle and decoder blocks are plain NAF blocks.  Which convs ``kernel_size`` changes (the
paper's 5×5 study) is NAFNet's option ``enlarge``: ``"spatial"`` (default) the intro/ending convs
and every block's depthwise conv (FLOPs k5/k3 ×1.15 ``cgnet``, ×1.02 ``cgnet_sidd``); ``"all"``
also every block's expansion, projection (the fused (2 + n)·c → c conv after the context
extractor) and FFN convs, at any kernel size (×2.73 / ×2.76, near DnCNN's ×2.78).  Under both,
the channel attention's 1×1 conv on the pooled vector and the down/up-sampling convs stay as
designed, and the global context extractor's cascade keeps its kernels (3, 3[, 5]) and strides
and is a plain conv for every conv kind: its strided, unpadded depthwise convs pool context
rather than filter the image, and one study density (one value for 3×3, two for 5×5) could not
be given to the cascade's mixed 3×3/5×5 kernels.

The paper's timings (``benchmarks/wide_kernels.py``, 2-core CPU, as for NAFNet): its 5×5 CGNet
takes ×3.6 the 3×3 epoch time (11.02 / 3.04 s), near DnCNN's ×3.9.  Here DnCNN measures ×2.2,
the ``all`` reading ×2.2 (``cgnet``; the SIDD config at k = 5 is too slow for this CPU) and the
``spatial`` reading ×1.25 (``cgnet_sidd``; FLOPs ×1.02): the ratio favours ``all``, but ``all``
makes the 3×3 SIDD net 14× DnCNN's FLOPs (``spatial``: 1.7×), hard to square with the paper's
3×3 CGNet epoch of 1.25× DnCNN's.  The default stays ``spatial``, as for NAFNet.

The unpadded cascades need a minimum input side (31 px at the level of a 3-step cascade, 7 px for
a 2-step one); the input is padded at the bottom/right (``pad_mode``: zeros as in the official
code, reflect or replicate) to a multiple of 2^levels and at least to that minimum (64 px for the
default and SIDD configs), and the output cropped back, so any input size works.  Initialisation
as NAFNet's.  ``cgnet`` is a small config that trains in minutes; ``cgnet_sidd`` is the published
SIDD config (width 60, same parameter count as the official code).  The official Gaussian-denoising
variant (a different cascade and an output clamp) is not offered.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wconv.models.nafnet import ChannelAttention, NAFBlock, NAFNet, pointwise_kernel
from wconv.models.registry import register
from wconv.nn import ConvFactory

GCE_CASCADES: dict[int, tuple[tuple[int, int], ...]] = {
    2: ((3, 2), (3, 3)),
    3: ((3, 2), (3, 3), (5, 4)),
}
"""(kernel, stride) of each step of the 2- and 3-step context cascades of the official code."""


class GlobalContextExtractor(nn.Module):
    """Cascade of depthwise-separable convs fused with the block's 2c-channel feature ``x``.

    ``g_0 = x[:c] + x[c:]``; ``g_i = GELU(conv1×1(dwconv_i(g_{i−1})))`` where ``dwconv_i`` is a
    depthwise ``k_i×k_i`` conv with stride ``s_i`` and no padding; output
    ``concat(x, up(g_1), …, up(g_n))`` with nearest up-sampling to the size of ``x``: (2 + n)·c
    channels.  An unpadded step needs ``side >= k``, hence :attr:`min_side`.
    """

    def __init__(self, channels: int, steps: int) -> None:
        super().__init__()
        cascade = GCE_CASCADES[steps]
        # Plain nn.Conv2d on purpose: the cascade stays standard for every conv kind (module doc).
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, k, stride=s, groups=channels, bias=False),
                nn.Conv2d(channels, channels, 1, bias=False),
                nn.GELU(),
            )
            for k, s in cascade
        )
        need = 1
        for k, s in reversed(cascade):
            need = k + (need - 1) * s
        self.min_side = need

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        context = a + b
        outputs = [x]
        for stage in self.stages:
            context = stage(context)
            outputs.append(F.interpolate(context, size=x.shape[-2:], mode="nearest"))
        return torch.cat(outputs, dim=1)


class CascadedGazeBlock(NAFBlock):
    """NAF block whose mixer is GELU → :class:`GlobalContextExtractor` → channel attention → 1×1.

    ``y = x + β · conv1×1(CA(GCE(GELU(dwconv(conv1×1(LN(x)))))))``, then NAFNet's gated FFN.
    ``pointwise`` is the side of the expansion, projection (fused → c) and FFN convs, as in
    :class:`~wconv.models.nafnet.NAFBlock`; the cascade and the channel attention keep theirs.
    """

    def __init__(
        self, conv: ConvFactory, channels: int, kernel_size: int, steps: int, pointwise: int = 1
    ) -> None:
        context = GlobalContextExtractor(channels, steps)
        fused = (2 + steps) * channels
        project = conv(fused, channels, pointwise, padding=pointwise // 2)
        mixer = nn.Sequential(nn.GELU(), context, ChannelAttention(conv, fused), project)
        super().__init__(conv, channels, kernel_size, mixer=mixer, pointwise=pointwise)
        self.min_side = context.min_side


class CascadedGaze(NAFNet):
    """CGNet: :class:`NAFNet` with ``gce_steps[l]``-step :class:`CascadedGazeBlock` s at level l.

    Inputs are padded (``pad_mode``) to a multiple of ``2^levels`` and at least to
    :attr:`min_side`, the smallest side whose every cascade has an output at its level (64 for
    the default and the SIDD configs: level 1's 3-step cascade needs 31 px there), then cropped
    back, so any input size works.
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
        gce_steps: Sequence[int],
        pad_mode: str = "zeros",
        enlarge: str = "spatial",
    ) -> None:
        pointwise = pointwise_kernel(type(self).__name__, enlarge, kernel_size)
        if len(gce_steps) != len(enc_blocks):
            raise ValueError(
                f"CascadedGaze: gce_steps {list(gce_steps)} needs one entry per encoder level "
                f"({len(enc_blocks)} for enc_blocks {list(enc_blocks)})"
            )
        for steps in gce_steps:
            if steps not in GCE_CASCADES:
                raise ValueError(
                    f"CascadedGaze: gce_steps entries must be one of {sorted(GCE_CASCADES)}, "
                    f"got {steps!r}"
                )

        def encoder_block(level: int, channels: int) -> nn.Module:
            return CascadedGazeBlock(conv, channels, kernel_size, gce_steps[level], pointwise)

        super().__init__(
            conv,
            in_channels,
            kernel_size,
            width,
            enc_blocks,
            middle_blocks,
            dec_blocks,
            pad_mode,
            encoder_block,
            enlarge,
        )


@register("restoration")
def cgnet(
    conv: ConvFactory,
    in_channels: int = 3,
    kernel_size: int = 3,
    width: int = 16,
    enc_blocks: Sequence[int] = (1, 1, 1, 1),
    middle_blocks: int = 1,
    dec_blocks: Sequence[int] = (1, 1, 1, 1),
    gce_steps: Sequence[int] = (3, 3, 2, 2),
    pad_mode: str = "zeros",
    enlarge: str = "spatial",
) -> nn.Module:
    """A small CGNet (width 16, one block per level, cascades [3, 3, 2, 2]) that trains in minutes.

    ``kernel_size`` (3 or 5) changes the intro/ending convs and every depthwise conv, not the
    context cascades; with ``enlarge="all"`` also the blocks' expansion, projection and FFN convs.
    """
    return CascadedGaze(
        conv,
        in_channels,
        kernel_size,
        width,
        tuple(enc_blocks),
        middle_blocks,
        tuple(dec_blocks),
        tuple(gce_steps),
        pad_mode,
        enlarge,
    )


@register("restoration")
def cgnet_sidd(
    conv: ConvFactory,
    in_channels: int = 3,
    kernel_size: int = 3,
    pad_mode: str = "zeros",
    enlarge: str = "spatial",
) -> nn.Module:
    """The published CGNet SIDD config: width 60, enc [2, 2, 4, 6], middle 10, dec [2, 2, 2, 2],
    cascades [3, 3, 2, 2].  ``kernel_size`` and ``enlarge`` as for :func:`cgnet`."""
    return CascadedGaze(
        conv,
        in_channels,
        kernel_size,
        60,
        (2, 2, 4, 6),
        10,
        (2, 2, 2, 2),
        (3, 3, 2, 2),
        pad_mode,
        enlarge,
    )
