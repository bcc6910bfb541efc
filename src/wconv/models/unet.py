"""U-Net backbones of the CoordGate deblurring study (Howard, Norreys & Döpp, arXiv 2401.04680,
Fig. 4a): a plain U-Net of depth ``d``, the CG U-Net(d) with CoordGate layers at every level, and
a CoordConv U-Net.  No official code exists; the layout follows the paper's Fig. 4a and its
caption (only the abstract and figure captions are public) and is documented in docs/coordgate.md.

Level ``l`` (0 … d) has ``base_width · 2**l`` channels, so the deepest has ``n_c[d]``.  Encoder
level: two (conv k×k → BN → ReLU) blocks, then 2× max-pool; decoder level: nearest 2× upsampling,
concatenation with the skip, two conv blocks; a 1×1 output conv and, by default, a global residual
(the network predicts the correction to the blurred input; the output conv starts at zero, so the
untrained network is the identity).  The networks are dimension-generic
(``conv.dims``): the 1D experiment uses the same class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wconv.models.init import identity_head_, kaiming_init_
from wconv.models.registry import register
from wconv.models.restoration_common import check_positive, padded_side
from wconv.nn import ConvFactory, CoordConv, CoordGate

BLOCKS: tuple[str, ...] = ("plain", "coordgate", "coordconv")
POOLS: dict[str, tuple[type[nn.Module], ...]] = {
    "max": (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d),
    "avg": (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d),
}


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, list[slice]]:
    """Zero-pad every spatial side of ``x`` to a multiple of ``multiple``, split evenly between the
    two ends, and return the slices that crop the result back.

    Even split (unlike the bottom/right padding of the denoising models) keeps the field centre at
    coordinate 0 for the CoordGate/CoordConv layers; zero padding has a deterministic backward on
    every device.
    """
    pads: list[tuple[int, int]] = []
    crop: list[slice] = [slice(None), slice(None)]
    for side in x.shape[2:]:
        extra = padded_side(side, multiple, 1) - side
        before = extra // 2
        crop.append(slice(before, before + side))
        pads.append((before, extra - before))
    if all(p == (0, 0) for p in pads):
        return x, crop
    flat = [v for pair in reversed(pads) for v in pair]  # F.pad wants the last axis first
    return F.pad(x, flat), crop


class ConvBlock(nn.Sequential):
    """``convs`` (default two) × (conv k×k → BN → ReLU).  ``coordconv``: the first conv is a
    :class:`CoordConv`; ``coordgate``: the last conv is a :class:`CoordGate` (its k×k conv gated,
    then 1×1)."""

    def __init__(
        self,
        conv: ConvFactory,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        batch_norm: bool,
        block: str,
        gate_options: dict[str, Any],
        convs: int = 2,
    ) -> None:
        norm = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[conv.dims - 1]
        bias = not batch_norm
        args = (out_channels, kernel_size)
        first: nn.Module = (
            CoordConv(in_channels, *args, conv=conv, bias=bias)
            if block == "coordconv"
            else conv(in_channels, *args, padding=kernel_size // 2, bias=bias)
        )
        middle = [
            conv(out_channels, *args, padding=kernel_size // 2, bias=bias) for _ in range(convs - 2)
        ]
        last: nn.Module = (
            CoordGate(out_channels, *args, conv=conv, bias=bias, **gate_options)
            if block == "coordgate"
            else conv(out_channels, *args, padding=kernel_size // 2, bias=bias)
        )
        layers: list[nn.Module] = []
        for layer in (first, *middle, last):
            layers += [layer, norm(out_channels)] if batch_norm else [layer]
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class UNet(nn.Module):
    """U-Net of depth ``d`` (``d`` down and ``d`` up steps); ``block`` selects the variant:

    * ``plain`` — the backbone of Fig. 4a;
    * ``coordgate`` — CG U-Net(d): the second conv of every level's block is a
      :class:`~wconv.nn.CoordGate` (k×k conv ⊙ coordinate gate → 1×1), so a gate acts before each
      down step (the gated block output is also the skip), before each up step and before the
      output conv — ``2d + 1`` gates, at the places of the first author's later code; replacing a
      conv rather than adding one keeps the overhead to the MLPs and 1×1 projections;
    * ``coordconv`` — the first conv of every level's block is a :class:`~wconv.nn.CoordConv`.

    Any input size works: the input is zero-padded (evenly) to a multiple of ``2**d`` and the
    output cropped back.  ``gate_options`` go to every CoordGate (``encoder_width``,
    ``activation``, …).  ``widths`` (one per level, ``d + 1``) replaces ``base_width · 2**l``;
    ``pool`` is ``max`` or ``avg``; ``decoder_convs`` convs per decoder level (2) — MultiWienerNet's
    original refiner uses the last three.
    """

    def __init__(
        self,
        conv: ConvFactory,
        in_channels: int,
        out_channels: int,
        depth: int,
        base_width: int,
        kernel_size: int = 3,
        batch_norm: bool = True,
        residual: bool = True,
        block: str = "plain",
        gate_options: dict[str, Any] | None = None,
        widths: Sequence[int] | None = None,
        pool: str = "max",
        decoder_convs: int = 2,
    ) -> None:
        super().__init__()
        check_positive(
            "UNet", in_channels=in_channels, out_channels=out_channels, depth=depth,
            base_width=base_width,
        )  # fmt: skip
        if block not in BLOCKS:
            raise ValueError(f"UNet: unknown block {block!r}; choose one of {list(BLOCKS)}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"UNet: kernel_size must be odd (3, 5, …), got {kernel_size}")
        if residual and in_channels != out_channels:
            raise ValueError(
                f"UNet: a global residual needs in_channels == out_channels, got {in_channels} and "
                f"{out_channels}; pass residual=False"
            )
        self.depth = depth
        self.residual = residual
        self.dims = conv.dims
        if pool not in POOLS:
            raise ValueError(f"UNet: unknown pool {pool!r}; choose one of {list(POOLS)}")
        if decoder_convs < 2:
            raise ValueError(f"UNet: decoder_convs must be at least 2, got {decoder_convs}")
        if widths is None:
            widths = [base_width * 2**level for level in range(depth + 1)]
        elif len(widths) != depth + 1 or min(widths) < 1:
            raise ValueError(
                f"UNet: widths needs depth + 1 = {depth + 1} positive values, got {list(widths)}"
            )

        def level(cin: int, cout: int, convs: int = 2) -> ConvBlock:
            return ConvBlock(
                conv, cin, cout, kernel_size, batch_norm, block, gate_options or {}, convs
            )

        self.encoders = nn.ModuleList()
        channels = in_channels
        for width in widths[:-1]:
            self.encoders.append(level(channels, width))
            channels = width
        self.middle = level(channels, widths[-1])
        self.decoders = nn.ModuleList(
            level(widths[lvl + 1] + widths[lvl], widths[lvl], decoder_convs)
            for lvl in reversed(range(depth))
        )
        self.pool = POOLS[pool][self.dims - 1](2)
        self.head = conv.plain(widths[0], out_channels, 1)
        kaiming_init_(self)
        for module in self.modules():
            if isinstance(module, CoordGate):
                module.reset_encoder()
        if residual:
            # A zero output conv makes the residual net start as the identity (output = blurred
            # input) instead of input + random features, which it first has to unlearn.
            identity_head_(self.head)

    def forward(self, x: Tensor) -> Tensor:
        padded, crop = pad_to_multiple(x, 2**self.depth)
        h = padded
        skips: list[Tensor] = []
        for encode in self.encoders:
            h = encode(h)
            skips.append(h)
            h = self.pool(h)
        h = self.middle(h)
        for decode in self.decoders:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[2:], mode="nearest")
            h = decode(torch.cat([h, skip], dim=1))
        out = self.head(h)[tuple(crop)]
        return x + out if self.residual else out


@register("deblurring")
def unet(
    conv: ConvFactory,
    in_channels: int = 1,
    depth: int = 3,
    base_width: int = 16,
    kernel_size: int = 3,
    batch_norm: bool = True,
    residual: bool = True,
) -> nn.Module:
    """The plain U-Net backbone of depth ``depth`` (deepest width ``base_width · 2**depth``)."""
    return UNet(
        conv, in_channels, in_channels, depth, base_width, kernel_size, batch_norm, residual
    )


@register("deblurring")
def cg_unet(
    conv: ConvFactory,
    in_channels: int = 1,
    depth: int = 3,
    base_width: int = 16,
    kernel_size: int = 3,
    batch_norm: bool = True,
    residual: bool = True,
    encoder_width: int = 32,
    encoder_depth: int = 2,
    activation: str = "relu",
    gate: str = "identity",
) -> nn.Module:
    """CG U-Net(d): the U-Net with ``2d + 1`` CoordGate layers (see :class:`UNet`)."""
    gate_options = {
        "encoder_width": encoder_width,
        "encoder_depth": encoder_depth,
        "activation": activation,
        "gate": gate,
    }
    return UNet(
        conv, in_channels, in_channels, depth, base_width, kernel_size, batch_norm, residual,
        block="coordgate", gate_options=gate_options,
    )  # fmt: skip


@register("deblurring")
def coordconv_unet(
    conv: ConvFactory,
    in_channels: int = 1,
    depth: int = 3,
    base_width: int = 16,
    kernel_size: int = 3,
    batch_norm: bool = True,
    residual: bool = True,
) -> nn.Module:
    """CoordConv U-Net: coordinate channels enter the first conv of every level."""
    return UNet(
        conv, in_channels, in_channels, depth, base_width, kernel_size, batch_norm, residual,
        block="coordconv",
    )  # fmt: skip
