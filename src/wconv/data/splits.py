"""What ``load_split`` returns, and the seeded splitting and statistics shared by all data sets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wconv.vocabulary import SPLITS


@dataclass
class ClassificationSplit:
    """One split of a classification data set, held in memory as compact tensors."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    num_classes: int
    mean: tuple[float, ...]  # per channel on [0, 1], computed on the train split only
    std: tuple[float, ...]


@dataclass
class RestorationSplit:
    """One split of a restoration data set: clean targets and their degraded inputs."""

    clean: torch.Tensor  # uint8 (N, C, H, W)
    degraded: torch.Tensor  # float32 (N, C, H, W) on the [0, 1] scale
    description: str  # how ``degraded`` was made, e.g. "gaussian sigma=0.01 clip=False"


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..N-1`` into (kept, held-out) with ``fraction`` of every class held out.

    The held-out total is ``round(fraction * N)``; it is shared among classes by the largest
    remainder method, so each class gets its exact share rounded up or down (within ±1) and the
    total is exact. Members of each class are drawn by one ``numpy`` generator seeded with
    ``seed``, so the same labels, fraction and seed give the same split on every machine.
    Both returned arrays are sorted.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(
            f"split fraction must be in (0, 1), got {fraction}; set e.g. val_fraction: 0.1"
        )
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    shares = fraction * counts
    held_counts = np.floor(shares).astype(np.int64)
    missing = round(fraction * len(labels)) - int(held_counts.sum())
    # Largest remainders first; ties go to the lower class id so the result is deterministic.
    order = np.lexsort((classes, -(shares - held_counts)))
    held_counts[order[:missing]] += 1
    rng = np.random.default_rng(seed)
    held = [
        rng.permutation(np.flatnonzero(labels == c))[:k]
        for c, k in zip(classes, held_counts, strict=True)
    ]
    held_idx = np.sort(np.concatenate(held)) if held else np.empty(0, np.int64)
    kept_idx = np.setdiff1d(np.arange(len(labels)), held_idx)
    if len(held_idx) == 0 or len(kept_idx) == 0:
        raise ValueError(
            f"a fraction of {fraction} of {len(labels)} items leaves an empty part; "
            "choose a fraction that keeps at least one item on each side"
        )
    return kept_idx.astype(np.int64), held_idx.astype(np.int64)


def channel_stats(
    images: np.ndarray, chunk: int = 4096
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images (N, C, H, W) on the [0, 1] scale,
    accumulated in float64 chunk by chunk so a memory-mapped array is never loaded at once."""
    n, c = images.shape[:2]
    total = np.zeros(c)
    total_sq = np.zeros(c)
    for start in range(0, n, chunk):
        x = np.asarray(images[start : start + chunk], dtype=np.float64) / 255.0
        total += x.sum(axis=(0, 2, 3))
        total_sq += np.square(x).sum(axis=(0, 2, 3))
    count = n * images.shape[2] * images.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
