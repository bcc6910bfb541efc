"""MultiWienerNet (Yanny, Monakhova, Shuai & Waller, Optica 2022): a bank of learnable PSFs, one
Wiener deconvolution per PSF in the Fourier domain, and a U-Net that merges the deconvolutions
into the output (official code: github.com/Waller-Lab/MultiWienerNet).

Wiener stage, per PSF ``h_i`` and regulariser ``K_i ≥ 0``::

    X_i = F⁻¹[ conj(H_i) · Y / (|H_i|² + K_i) ],   H_i = F[h_i],  Y = F[y]

computed with ``torch.fft`` on a zero-padded canvas of at least twice the input side (at least
``side + psf_size - 1``, so that the PSF never wraps around), with the PSF centred on the origin,
then centre-cropped back.  ``K_i = exp(κ_i)`` keeps the regulariser positive for any ``κ_i``
(instead of clamping, whose gradient dies at 0).  The refiner is this project's U-Net
(:class:`wconv.models.unet.UNet`, conv kind from ``conv``) with ``num_psfs · in_channels`` inputs.

Initial PSF bank (a decision): the original starts from 9 PSFs measured across the field.  The
builder takes them as ``psfs`` (an ``(n, k, k)`` array); a training run on the deblur data
(:func:`wconv.train.engine.build_model`) passes the data's own PSF model sampled at a 3×3 lattice
of field positions (:func:`wconv.data.deblur.sample_psfs`; 21 px, σ 0.8 px at the centre to 3.0 px
at the edge with the study's settings; ``num_psfs`` in the run's model options picks another square
lattice, e.g. 4 = 2×2).  Built by name alone (model card, the grid's meta-device check) the bank
is ``num_psfs = 4`` generic Gaussians of ``psf_size = 15`` px (σ 0.5 … 3 px).

Refiner (a decision, switchable by ``refiner``): the original refiner has six levels of 24, 64,
128, 256, 512 and 1024 channels, average pooling and three convs per decoder level.
``refiner="study"`` (default) is the study's U-Net (depth ``d``, ``base_width · 2**l`` channels,
max-pooling, two convs per level), so that at every depth of the PSNR-vs-parameters sweep
MultiWienerNet differs from ``unet`` only by its Wiener stage; ``refiner="original"`` uses the
original's widths (the first ``d + 1`` of them; ``base_width`` is then unused), average pooling
and three convs per decoder level: 2.12 M parameters at ``d = 3`` (4 PSFs) against ``study``'s
0.49 M, so it sits further right on the PSNR-vs-parameters plot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wconv.models.init import identity_head_
from wconv.models.registry import register
from wconv.models.restoration_common import check_positive
from wconv.models.unet import UNet
from wconv.nn import ConvFactory


def gaussian_psfs(sigmas: Sequence[float], size: int, dims: int = 2) -> Tensor:
    """Isotropic Gaussian PSFs ``(len(sigmas), size, …)`` of unit sum (the default PSF bank)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"gaussian_psfs: size must be odd, got {size}")
    if any(not math.isfinite(s) or s <= 0 for s in sigmas):
        raise ValueError(f"gaussian_psfs: sigmas must be > 0, got {list(sigmas)}")
    axis = torch.arange(size, dtype=torch.float64) - size // 2
    r2 = sum(
        a**2 for a in torch.meshgrid(*([axis] * dims), indexing="ij")
    )  # squared distance from the centre
    bank = torch.stack([torch.exp(-r2 / (2 * s**2)) for s in sigmas])  # type: ignore[arg-type]
    bank = bank / bank.flatten(1).sum(1).view(-1, *([1] * dims))
    return bank.float()


class WienerDeconvolution(nn.Module):
    """Multi-PSF Wiener deconvolution (module docstring): ``(B, C, *S) → (B, C·n, *S)``, output
    channel ``c·n + i`` is channel ``c`` deconvolved with PSF ``i``."""

    def __init__(
        self, psfs: Tensor, regularizer: float | Sequence[float] = 1e-2, learnable: bool = True
    ) -> None:
        super().__init__()
        if psfs.dim() < 2 or any(k % 2 == 0 for k in psfs.shape[1:]):
            raise ValueError(
                "WienerDeconvolution: psfs must be (num_psfs, k, …) with odd sides, got shape "
                f"{tuple(psfs.shape)}"
            )
        n = psfs.shape[0]
        k = torch.as_tensor(regularizer, dtype=torch.float32).flatten()
        k = k.expand(n).clone() if k.numel() == 1 else k
        if k.numel() != n or not bool((k > 0).all()):
            raise ValueError(
                f"WienerDeconvolution: regularizer must be one value > 0 or {n} of them, "
                f"got {regularizer}"
            )
        self.dims = psfs.dim() - 1
        psfs = psfs.detach().float().clone()
        self.psfs = nn.Parameter(psfs, requires_grad=learnable)
        self.log_regularizer = nn.Parameter(k.log(), requires_grad=learnable)

    @property
    def regularizer(self) -> Tensor:
        """``K_i = exp(κ_i) > 0``, one per PSF."""
        return self.log_regularizer.exp()

    def forward(self, y: Tensor) -> Tensor:
        if y.dim() != self.dims + 2:
            raise ValueError(
                f"WienerDeconvolution: expected a (B, C, {self.dims} spatial axes) input, got "
                f"shape {tuple(y.shape)}"
            )
        sides = y.shape[2:]
        kernel = self.psfs.shape[1:]
        canvas = [max(2 * s, s + k - 1) for s, k in zip(sides, kernel, strict=True)]
        axes = tuple(range(-self.dims, 0))
        before = [(c - s) // 2 for c, s in zip(canvas, sides, strict=True)]
        pad_y: list[int] = []
        pad_h: list[int] = []
        for c, s, k, b in reversed(list(zip(canvas, sides, kernel, before, strict=True))):
            pad_y += [b, c - s - b]
            pad_h += [0, c - k]
        # PSF centre moved to index 0, so deconvolution does not shift the image
        h = torch.roll(F.pad(self.psfs, pad_h), [-(k // 2) for k in kernel], dims=axes)
        transfer = torch.fft.rfftn(h, dim=axes)  # (n, …)
        spectrum = torch.fft.rfftn(F.pad(y, pad_y), dim=axes).unsqueeze(2)  # (B, C, 1, …)
        shape = (-1,) + (1,) * self.dims
        wiener = transfer.conj() / (transfer.abs().square() + self.regularizer.view(shape))
        x = torch.fft.irfftn(spectrum * wiener, s=canvas, dim=axes)  # (B, C, n, *canvas)
        crop = tuple(slice(b, b + s) for b, s in zip(before, sides, strict=True))
        x = x[(..., *crop)]
        return x.flatten(1, 2)


ORIGINAL_WIDTHS = (24, 64, 128, 256, 512, 1024)
"""Channels per level of the original MultiWienerNet refiner."""

REFINERS: dict[str, Callable[[int], dict[str, Any]]] = {
    "study": lambda depth: {},
    "original": lambda depth: {
        "widths": ORIGINAL_WIDTHS[: depth + 1],
        "pool": "avg",
        "decoder_convs": 3,
    },
}
"""The refiner's U-Net options per ``refiner`` choice, given the depth."""


class MultiWienerNet(nn.Module):
    """Wiener deconvolution with a learnable PSF bank → U-Net refiner (module docstring)."""

    def __init__(
        self,
        conv: ConvFactory,
        psfs: Tensor,
        in_channels: int = 1,
        depth: int = 3,
        base_width: int = 16,
        regularizer: float = 1e-2,
        kernel_size: int = 3,
        batch_norm: bool = True,
        residual: bool = True,
        refiner: str = "study",
    ) -> None:
        super().__init__()
        if refiner not in REFINERS:
            raise ValueError(
                f"multiwienernet: unknown refiner {refiner!r}; choose one of {list(REFINERS)}"
            )
        if refiner == "original" and depth >= len(ORIGINAL_WIDTHS):
            raise ValueError(
                f"multiwienernet: the original refiner has {len(ORIGINAL_WIDTHS)} levels, so "
                f"depth must be at most {len(ORIGINAL_WIDTHS) - 1}, got {depth}"
            )
        self.wiener = WienerDeconvolution(psfs, regularizer)
        self.refiner = UNet(
            conv, in_channels * psfs.shape[0], in_channels, depth, base_width, kernel_size,
            batch_norm, residual=False, **REFINERS[refiner](depth),
        )  # fmt: skip
        self.residual = residual
        if residual:  # start as the identity, like the study's residual U-Nets
            identity_head_(self.refiner.head)

    def forward(self, x: Tensor) -> Tensor:
        out = self.refiner(self.wiener(x))
        return x + out if self.residual else out


@register("deblurring")
def multiwienernet(
    conv: ConvFactory,
    in_channels: int = 1,
    depth: int = 3,
    base_width: int = 16,
    num_psfs: int = 4,
    psf_size: int = 15,
    psf_sigmas: Sequence[float] | None = None,
    psfs: Sequence | np.ndarray | Tensor | None = None,
    regularizer: float = 1e-2,
    kernel_size: int = 3,
    batch_norm: bool = True,
    residual: bool = True,
    refiner: str = "study",
) -> nn.Module:
    """MultiWienerNet with its PSF bank initialised from ``psfs`` (array ``(n, k, k)``, e.g. PSFs
    sampled across the field by :func:`wconv.data.deblur.sample_psfs`) or, by default, from
    ``num_psfs`` Gaussians of ``psf_size`` px with widths ``psf_sigmas`` (default 0.5 … 3 px).
    ``residual`` (our addition, default on) adds the input to the refiner's output and starts that
    output at zero, as for the study's U-Nets; ``residual=False`` is the original network.
    ``refiner``: ``study`` (the study's U-Net) or ``original`` (the original's widths, average
    pooling, three convs per decoder level; module docstring)."""
    check_positive("multiwienernet", num_psfs=num_psfs, psf_size=psf_size)
    if psfs is not None:
        bank = torch.as_tensor(np.asarray(psfs, dtype=np.float32))
        if bank.dim() != conv.dims + 1:
            raise ValueError(
                f"multiwienernet: psfs must have shape (num_psfs, k, k), got {tuple(bank.shape)}"
            )
    else:
        sigmas = psf_sigmas if psf_sigmas is not None else np.linspace(0.5, 3.0, num_psfs)
        bank = gaussian_psfs([float(s) for s in sigmas], psf_size, conv.dims)
    return MultiWienerNet(
        conv, bank, in_channels, depth, base_width, regularizer, kernel_size, batch_norm, residual,
        refiner,
    )  # fmt: skip
