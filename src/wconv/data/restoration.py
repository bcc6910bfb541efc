"""Preparing and loading restoration data sets (DIV2K, embedded photographs) for denoising.

Two cached levels under ``<root>/<dataset>/``:

* ``crops-<digest>/``: clean uint8 arrays ``{train,val,test}_clean.npy`` (N, C, H, W) and
  ``crops.json`` (which image and position every row comes from). Train rows are
  ``patches_per_image`` patches of ``patch_size`` per train image at positions drawn by a
  generator seeded from ``(split_seed, image key)``; val/test rows are one centre crop of
  ``eval_crop`` per image. The digest covers these settings, the split and the source content.
* ``crops-<digest>/noise-<digest>/``: float16 ``{train,val,test}_degraded.npy`` made by the noise
  model (``wconv.data.noise``); the digest covers the noise settings, so a noise sweep reuses the
  crops and never decodes an image again. float16 halves the largest file of the study (the
  values are computed in float32 and rounded once; on [0, 1] the rounding error is at most
  2^-12 and moves the identity PSNR at sigma = 0.01 by about 1e-3 dB, see docs/performance.md).
  Folders written before this change hold float32 and load unchanged. ``load`` returns float32
  either way (the ``RestorationSplit`` contract).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wconv.data import noise, store
from wconv.data.config import (
    DatasetKind,
    DatasetSpec,
    content_settings,
    not_prepared_message,
    schema_settings,
)
from wconv.data.splits import SPLITS, RestorationSplit, check_split, stratified_split

log = logging.getLogger(__name__)

CROP_KEYS = (
    "patch_size",
    "patches_per_image",
    "eval_crop",
    "grayscale",
    "val_fraction",
    "split_seed",
)
# Storage dtype of degraded images (see the module docstring for why float16 is exact enough).
DEGRADED_DTYPE = np.float16
# ITU-R BT.601 luma weights in thousandths (the weights PIL's "L" mode uses).
_LUMA_PER_MILLE = np.array([299, 587, 114], dtype=np.int64)


@dataclass(frozen=True)
class ImageRef:
    """One source image: ``key`` is a stable integer (e.g. the DIV2K number) that seeds its patch
    positions, so adding or removing other images never moves its patches."""

    name: str
    key: int
    load: Callable[[], np.ndarray]  # -> uint8 (H, W, 3) RGB


def holdout(
    refs: Sequence[ImageRef], fraction: float, seed: int
) -> tuple[list[ImageRef], list[ImageRef]]:
    """Split images into (kept, held out) with ``round(fraction * n)`` held out, seeded."""
    kept, held = stratified_split(np.zeros(len(refs), dtype=np.int64), fraction, seed)
    return [refs[i] for i in kept], [refs[i] for i in held]


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> uint8 (H, W, 1) luma ``0.299 R + 0.587 G + 0.114 B`` rounded half
    up, in integer arithmetic so the result is exact on every machine and memory layout."""
    luma = (rgb.astype(np.int64) * _LUMA_PER_MILLE).sum(axis=-1, keepdims=True)
    return ((luma + 500) // 1000).astype(np.uint8)


def crop_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: cfg[k] for k in CROP_KEYS} | {"content": content_settings(cfg)}


def crops_dir(spec: DatasetSpec, cfg: dict[str, Any], root: Path) -> Path:
    return root / spec.name / f"crops-{store.digest(crop_settings(cfg))}"


def prepared_dir(spec: DatasetSpec, cfg: dict[str, Any], root: Path) -> Path:
    return crops_dir(spec, cfg, root) / f"noise-{store.digest(cfg['noise'])}"


def prepare(spec: DatasetSpec, cfg: dict[str, Any], root: Path) -> Path:
    crops, noisy = crops_dir(spec, cfg, root), prepared_dir(spec, cfg, root)
    if store.is_complete(noisy):
        return noisy
    with store.locked(root / spec.name):
        if not store.is_complete(crops):
            refs = spec.build_data(cfg, root / spec.name)
            log.info(
                "%s: cutting patches and crops of %d images",
                spec.name,
                sum(map(len, refs.values())),
            )
            write_crops(crops, refs, cfg)
        if not store.is_complete(noisy):
            log.info("%s: adding %s noise", spec.name, noise.make_noise(cfg["noise"]).describe())
            for split in SPLITS:
                clean = store.load_npy(crops / f"{split}_clean.npy", mmap=True)
                with store.npy_writer(
                    noisy / f"{split}_degraded.npy", clean.shape, DEGRADED_DTYPE
                ) as out:
                    noise.degrade(clean, cfg["noise"], split, out)
            store.write_manifest(
                noisy, "noise", cfg["noise"], description=noise.make_noise(cfg["noise"]).describe()
            )
    return noisy


def write_crops(folder: Path, refs: dict[str, list[ImageRef]], cfg: dict[str, Any]) -> None:
    """Cut the clean arrays of every split from the source images (each decoded once)."""
    channels = 1 if cfg["grayscale"] else 3
    size = {"train": cfg["patch_size"], "val": cfg["eval_crop"], "test": cfg["eval_crop"]}
    per_image = {"train": cfg["patches_per_image"], "val": 1, "test": 1}
    positions: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        s, k = size[split], per_image[split]
        shape = (len(refs[split]) * k, channels, s, s)
        positions[split] = []
        with store.npy_writer(folder / f"{split}_clean.npy", shape, np.uint8) as out:
            for i, ref in enumerate(refs[split]):
                image = _decode(ref, cfg["grayscale"])
                h, w = image.shape[:2]
                if h < s or w < s:
                    key = "patch_size" if split == "train" else "eval_crop"
                    raise ValueError(
                        f"image {ref.name} ({h}x{w}) is smaller than {key}={s}; "
                        f"set data.{key} to at most {min(h, w)}"
                    )
                if split == "train":
                    rng = np.random.default_rng([cfg["split_seed"], ref.key])
                    tops, lefts = rng.integers(0, h - s + 1, k), rng.integers(0, w - s + 1, k)
                else:
                    tops, lefts = np.array([(h - s) // 2]), np.array([(w - s) // 2])
                for j, (top, left) in enumerate(zip(tops.tolist(), lefts.tolist(), strict=True)):
                    out[i * k + j] = image[top : top + s, left : left + s].transpose(2, 0, 1)
                    positions[split].append({"image": ref.name, "top": top, "left": left})
    store.write_json(folder / "crops.json", positions)
    store.write_manifest(
        folder,
        "restoration-crops",
        crop_settings(cfg),
        sizes={split: len(rows) for split, rows in positions.items()},
    )


def _decode(ref: ImageRef, grayscale: bool) -> np.ndarray:
    image = np.asarray(ref.load())
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image {ref.name} is not 8-bit RGB (got {image.dtype} {image.shape})")
    return to_gray(image) if grayscale else image


def load(spec: DatasetSpec, cfg: dict[str, Any], root: Path, split: str) -> RestorationSplit:
    check_split(split)
    folder = prepared_dir(spec, cfg, root)
    if not store.is_complete(folder):
        raise FileNotFoundError(not_prepared_message(spec.name, root))
    return RestorationSplit(
        clean=torch.from_numpy(store.load_npy(folder.parent / f"{split}_clean.npy")),
        # Widened on load: callers get float32 whatever the folder stores (float16 since issue 17).
        degraded=torch.from_numpy(store.load_npy(folder / f"{split}_degraded.npy")).float(),
        description=store.read_json(folder / store.MANIFEST)["description"],
    )


KIND = DatasetKind(
    settings=schema_settings("denoising_data"),
    prepared_dir=prepared_dir,
    prepare=prepare,
    load=load,
)
"""Clean/noisy image pairs: crops of the source images, and their noisy copies (the module
docstring)."""
