"""PSNR, SSIM, NRMSE, FSIM and UIQ for batches of images on [0, 1].

Sources: PSNR, SSIM and FSIM from piq; UIQ (Wang & Bovik's universal image quality index) from
torchmetrics; NRMSE = ||x − y||₂ / ||y||₂ per image (scikit-image's default ``euclidean``
normalisation), computed here in torch.  FSIM needs 3 channels for its chromatic term: grayscale
images use the luminance-only FSIM.
"""

from __future__ import annotations

from torch import Tensor

from wconv.metrics.lazy import piq  # piq and torchmetrics load at the first metric computed
from wconv.vocabulary import METRICS

IMAGE_METRICS: tuple[str, ...] = tuple(METRICS["denoising"])
"""The metrics :func:`image_metrics` computes: those of the image tasks (``wconv.vocabulary``)."""


def _nrmse(x: Tensor, y: Tensor) -> Tensor:
    diff = (x - y).flatten(1).norm(dim=1)
    return diff / y.flatten(1).norm(dim=1).clamp_min(1e-12)


def image_metrics(prediction: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Per-image metrics ``{name: Tensor(N)}`` of ``prediction`` against ``target`` (N, C, H, W)."""
    from torchmetrics.functional.image import universal_image_quality_index

    x = prediction.detach().float().clamp(0, 1)
    y = target.detach().float().clamp(0, 1)
    chromatic = x.shape[1] == 3
    uiq = universal_image_quality_index(x, y, reduction="none").flatten(1).mean(1)
    return {
        "psnr": piq.psnr(x, y, data_range=1.0, reduction="none"),
        "ssim": piq.ssim(x, y, data_range=1.0, reduction="none"),
        "nrmse": _nrmse(x, y),
        "fsim": piq.fsim(x, y, data_range=1.0, reduction="none", chromatic=chromatic),
        "uiq": uiq,
    }
