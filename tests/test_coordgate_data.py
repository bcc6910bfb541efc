"""The 2D spatially-varying blur data: reproducibility, a PSF that really varies, the split API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from wconv.data.deblur import (
    EMBEDDED_IMAGES,
    blur_fields,
    load_deblur_split,
    prepare_deblur,
    psf_field,
    resolve_deblur,
)
from wconv.data.splits import RestorationSplit

SMALL = {
    "field_size": 32,
    "fields": {"train": 4, "val": 2, "test": 2},
    "images": {
        "train": ["camera", "moon"],
        "val": ["coins"],
        "test": ["cell", "immunohistochemistry"],
    },
}


def test_same_seed_same_bytes_and_split_api(tmp_path: Path) -> None:
    first = prepare_deblur(SMALL, tmp_path / "a")
    second = prepare_deblur(SMALL, tmp_path / "b")
    arrays = sorted(p.name for p in first.glob("*.npy"))
    assert len(arrays) == 8  # clean + degraded per split, PSF basis and weights
    for name in arrays:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert prepare_deblur(SMALL, tmp_path / "a") == first  # idempotent: reused, not rewritten
    assert (first / "manifest.json").stat().st_mtime_ns == stamp

    split = load_deblur_split(SMALL, tmp_path / "a", "test")
    assert isinstance(split, RestorationSplit)
    assert split.clean.dtype == torch.uint8 and split.degraded.dtype == torch.float32
    assert split.clean.shape == split.degraded.shape == (2, 1, 32, 32)
    assert "radial blur" in split.description and "gaussian sigma=0.01" in split.description
    residual = split.degraded - split.clean.float() / 255
    assert 0.005 < residual.abs().mean() < 0.2  # blurred and noisy, but the same scene

    other = prepare_deblur({**SMALL, "noise": {"seed": 1}}, tmp_path / "a")
    assert other != first
    assert (other / "test_clean.npy").read_bytes() == (first / "test_clean.npy").read_bytes()
    assert (other / "test_degraded.npy").read_bytes() != (first / "test_degraded.npy").read_bytes()


def test_not_prepared_and_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="prepare_deblur"):
        load_deblur_split(SMALL, tmp_path, "train")
    with pytest.raises(ValueError, match=r"unknown key data\.blur"):
        resolve_deblur({"blur": 1})
    with pytest.raises(ValueError, match="not bundled"):
        resolve_deblur({"images": {"test": ["human_mitosis"]}})  # needs a download: refused
    with pytest.raises(ValueError, match="odd"):
        resolve_deblur({"psf": {"size": 20}})
    with pytest.raises(ValueError, match="truncates"):
        resolve_deblur({"psf": {"size": 7, "sigma_edge": 3.0}})
    with pytest.raises(ValueError, match=r"unknown key data\.images\.tran"):
        resolve_deblur({"images": {"tran": ["camera"]}})
    with pytest.raises(ValueError, match="augment"):
        resolve_deblur({"augment": "yes"})
    with pytest.raises(ValueError, match="smaller than"):
        prepare_deblur({**SMALL, "field_size": 300}, tmp_path)  # coins is 303 px high


def test_folder_source(tmp_path: Path) -> None:
    import skimage.io

    rng = np.random.default_rng(0)
    folders = {}
    for split in ("train", "val", "test"):
        folders[split] = str(tmp_path / split)
        (tmp_path / split).mkdir()
        for i in range(2):  # one grey and one RGB image per split
            shape = (60, 70) if i == 0 else (60, 70, 3)
            skimage.io.imsave(tmp_path / split / f"{i}.png", rng.integers(0, 256, shape, np.uint8))
    cfg = {"source": "folder", "folders": folders, "field_size": 24, "fields": {"val": 3}}
    prepare_deblur(cfg, tmp_path / "data")
    split = load_deblur_split(cfg, tmp_path / "data", "val")
    assert split.clean.shape == (3, 1, 24, 24)
    with pytest.raises(ValueError, match="folder"):
        resolve_deblur({"source": "folder"})


def test_div2k_source_uses_the_denoising_split(tmp_path: Path) -> None:
    import skimage.io

    rng = np.random.default_rng(0)
    parts = {"train": range(1, 5), "valid": range(5, 7)}  # DIV2K numbering, unpacked folders
    source = {}
    for part, numbers in parts.items():
        folder = tmp_path / part
        folder.mkdir()
        for n in numbers:
            image = rng.integers(0, 256, (50, 60, 3), np.uint8)
            skimage.io.imsave(folder / f"{n:04d}.png", image)
        source[part] = {"archive": str(folder), "count": len(numbers)}
    cfg = {
        "source": "div2k",
        "div2k": {"val_fraction": 0.25, "source": source},
        "field_size": 16,
        "fields": {"train": 6, "val": 2, "test": 2},
    }
    prepare_deblur(cfg, tmp_path / "data")
    sizes = {s: len(load_deblur_split(cfg, tmp_path / "data", s).clean) for s in ("train", "test")}
    assert sizes == {"train": 6, "test": 2}
    with pytest.raises(ValueError, match="count"):
        resolve_deblur({"source": "div2k", "div2k": {"source": {"train": {"count": -1}}}})


def test_embedded_images_load_offline() -> None:
    import skimage.data

    for name in EMBEDDED_IMAGES:
        image = getattr(skimage.data, name)()
        assert image.dtype == np.uint8 and min(image.shape[:2]) >= 150, name


def _spot_moments(spot: np.ndarray) -> tuple[float, np.ndarray]:
    """RMS radius and 2×2 second-moment matrix of a spot."""
    rows, cols = np.indices(spot.shape)
    total = spot.sum()
    r0, c0 = (rows * spot).sum() / total, (cols * spot).sum() / total
    dr, dc = rows - r0, cols - c0
    cov = (
        np.array(
            [
                [(dr * dr * spot).sum(), (dr * dc * spot).sum()],
                [(dr * dc * spot).sum(), (dc * dc * spot).sum()],
            ]
        )
        / total
    )
    return float(np.sqrt(np.trace(cov))), cov


def _delta_grid_response(model: str) -> tuple[np.ndarray, int]:
    size = 128
    cfg = resolve_deblur({"psf": {"model": model}})["psf"]
    basis, weights = psf_field(cfg, size)
    margin = basis.shape[-1] // 2
    scene = np.zeros((1, size + 2 * margin, size + 2 * margin))
    spacing = 24
    for r in range(12, size, spacing):
        for c in range(12, size, spacing):
            scene[0, margin + r, margin + c] = 1.0
    np.testing.assert_allclose(weights.sum(0), 1.0, atol=1e-12)  # flat stays flat
    return blur_fields(scene, basis, weights)[0], spacing


@pytest.mark.parametrize("model", ["radial", "astigmatic"])
def test_psf_varies_across_the_field(model: str) -> None:
    image, spacing = _delta_grid_response(model)
    half = spacing // 2

    def spot(r: int, c: int) -> np.ndarray:
        return image[r - half : r + half, c - half : c + half]

    np.testing.assert_allclose(spot(60, 60).sum(), 1.0, atol=1e-2)  # energy kept
    centre, _ = _spot_moments(spot(60, 60))  # delta nearest the centre
    corner, cov = _spot_moments(spot(12, 12))  # delta near the top-left corner
    assert corner > 2 * centre
    if model == "astigmatic":  # stretched along the diagonal towards the centre, not across it
        along = (cov[0, 0] + cov[1, 1] + 2 * cov[0, 1]) / 2
        across = (cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]) / 2
        assert along > 3 * across
    else:
        assert abs(cov[0, 1]) < 0.05 * np.trace(cov)  # isotropic
