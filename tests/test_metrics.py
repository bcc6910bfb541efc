"""Each metric against an independent reference computation on known images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage import data as skdata
from skimage.metrics import (
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)

from wconv.metrics import classification_metrics, image_metrics


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A real photograph (scikit-image's camera, cropped) and a noisy copy, on [0, 1]."""
    clean = skdata.camera()[100:196, 150:246].astype(np.float64) / 255
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1)
    return clean, noisy


def _ours(clean: np.ndarray, noisy: np.ndarray) -> dict[str, float]:
    as_tensor = lambda a: torch.from_numpy(a).float()[None, None]  # noqa: E731
    return {k: float(v[0]) for k, v in image_metrics(as_tensor(noisy), as_tensor(clean)).items()}


def _uiq_reference(x: np.ndarray, y: np.ndarray, sigma: float = 1.5, size: int = 11) -> float:
    """Wang & Bovik's index Q = 4 σxy μx μy / ((σx² + σy²)(μx² + μy²)), Gaussian windows."""
    truncate = (size // 2) / sigma
    blur = lambda a: gaussian_filter(a, sigma, truncate=truncate, mode="constant")  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    q = 4 * sxy * mx * my / ((sxx + syy) * (mx**2 + my**2))
    border = size // 2
    return float(q[border:-border, border:-border].mean())


def test_psnr_matches_scikit_image(pair):
    clean, noisy = pair
    expected = peak_signal_noise_ratio(clean, noisy, data_range=1.0)
    assert _ours(clean, noisy)["psnr"] == pytest.approx(expected, abs=1e-3)


def test_ssim_matches_scikit_image_gaussian_ssim(pair):
    clean, noisy = pair
    expected = structural_similarity(
        clean,
        noisy,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert _ours(clean, noisy)["ssim"] == pytest.approx(expected, abs=2e-3)


def test_nrmse_matches_scikit_image(pair):
    clean, noisy = pair
    expected = normalized_root_mse(clean, noisy, normalization="euclidean")
    assert _ours(clean, noisy)["nrmse"] == pytest.approx(expected, rel=1e-4)


def test_uiq_matches_the_formula(pair):
    clean, noisy = pair
    assert _ours(clean, noisy)["uiq"] == pytest.approx(_uiq_reference(noisy, clean), abs=2e-3)


def test_fsim_is_one_for_identical_images_and_falls_with_noise(pair):
    clean, noisy = pair
    assert _ours(clean, clean)["fsim"] == pytest.approx(1.0, abs=1e-4)
    rng = np.random.default_rng(1)
    noisier = np.clip(clean + rng.normal(0, 0.2, clean.shape), 0, 1)
    assert 0 < _ours(clean, noisier)["fsim"] < _ours(clean, noisy)["fsim"] < 1


def test_accuracy_f1_and_confusion_hand_computed():
    targets = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    predictions = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0])
    scores, confusion = classification_metrics(predictions, targets, 3)
    # class 0: TP 2, FP 1, FN 1 -> 2/3; class 1: TP 1, FP 1, FN 1 -> 1/2; class 2: TP 2, FP 1,
    # FN 1 -> 2/3.  Macro F1 = (2/3 + 1/2 + 2/3) / 3 = 11/18.
    assert scores["f1_macro"] == pytest.approx(11 / 18, abs=1e-6)
    assert scores["accuracy"] == pytest.approx(5 / 8)
    assert confusion.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
