"""Preparing and loading classification data sets (CIFAR-100, embedded digits).

Two cached levels under ``<root>/<dataset>/``:

* ``pool-<digest>/``: every image of the data set once, parsed (``images.npy`` uint8 (N, C, H, W),
  ``labels.npy`` int64), with the fixed test images as the last ``n_test`` rows. The digest covers
  only what decides the content (the archive's checksum).
* ``pool-<digest>/split-<digest>/``: ``split_indices.npz`` (sorted row indices ``train``, ``val``,
  ``test``), the versioned record of which images each split holds, and ``stats.json`` with the
  per-channel mean/std of the train split. The digest covers ``val_fraction`` and ``split_seed``.

Validation is a stratified hold-out of the non-test rows, so the test set never changes with the
split settings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wconv.data import store
from wconv.data.config import (
    DatasetKind,
    DatasetSpec,
    content_settings,
    not_prepared_message,
    schema_settings,
)
from wconv.data.splits import ClassificationSplit, channel_stats, check_split, stratified_split

log = logging.getLogger(__name__)


@dataclass
class Pool:
    """What a classification data set's ``build`` returns: all images, fixed test rows last."""

    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # int64 (N,), 0 .. num_classes-1
    n_test: int
    class_names: list[str]


def split_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"val_fraction": cfg["val_fraction"], "split_seed": cfg["split_seed"]}


def pool_dir(spec: DatasetSpec, cfg: dict[str, Any], root: Path) -> Path:
    return root / spec.name / f"pool-{store.digest(content_settings(cfg))}"


def prepared_dir(spec: DatasetSpec, cfg: dict[str, Any], root: Path) -> Path:
    return pool_dir(spec, cfg, root) / f"split-{store.digest(split_settings(cfg))}"


def prepare(spec: DatasetSpec, cfg: dict[str, Any], root: Path) -> Path:
    pool, split = pool_dir(spec, cfg, root), prepared_dir(spec, cfg, root)
    if store.is_complete(split):
        return split
    with store.locked(root / spec.name):
        if not store.is_complete(pool):
            _write_pool(pool, spec.build_data(cfg, root / spec.name), content_settings(cfg))
            log.info("%s: parsed images cached in %s", spec.name, pool)
        if not store.is_complete(split):
            _write_split(pool, split, cfg)
            log.info("%s: split written to %s", spec.name, split)
    return split


def _write_pool(folder: Path, pool: Pool, content: dict[str, Any]) -> None:
    n = len(pool.labels)
    if pool.images.dtype != np.uint8 or pool.images.ndim != 4 or len(pool.images) != n:
        raise ValueError(
            f"a classification pool needs uint8 images (N, C, H, W) matching {n} labels, got "
            f"{pool.images.dtype} {pool.images.shape}"
        )
    if (
        not 0 < pool.n_test < n
        or pool.labels.min() < 0
        or pool.labels.max() >= len(pool.class_names)
    ):
        raise ValueError(f"inconsistent pool: n_test={pool.n_test}, labels outside the class list")
    store.save_npy(folder / "images.npy", pool.images)
    store.save_npy(folder / "labels.npy", pool.labels.astype(np.int64))
    store.write_manifest(
        folder,
        "classification-pool",
        content,
        n_test=pool.n_test,
        num_classes=len(pool.class_names),
        class_names=pool.class_names,
    )


def _write_split(pool: Path, folder: Path, cfg: dict[str, Any]) -> None:
    n_test = store.read_json(pool / store.MANIFEST)["n_test"]
    labels = store.load_npy(pool / "labels.npy")
    n_trainval = len(labels) - n_test
    train, val = stratified_split(labels[:n_trainval], cfg["val_fraction"], cfg["split_seed"])
    test = np.arange(n_trainval, len(labels), dtype=np.int64)
    store.save_npz(folder / "split_indices.npz", train=train, val=val, test=test)
    mean, std = channel_stats(store.load_npy(pool / "images.npy", mmap=True)[train])
    store.write_json(folder / "stats.json", {"mean": mean, "std": std, "from": "train"})
    store.write_manifest(
        folder,
        "classification-split",
        split_settings(cfg),
        sizes={"train": len(train), "val": len(val), "test": len(test)},
    )


def load(spec: DatasetSpec, cfg: dict[str, Any], root: Path, split: str) -> ClassificationSplit:
    check_split(split)
    folder = prepared_dir(spec, cfg, root)
    if not store.is_complete(folder):
        raise FileNotFoundError(not_prepared_message(spec.name, root))
    pool = folder.parent
    with np.load(folder / "split_indices.npz") as indices:
        idx = indices[split]
    images = store.load_npy(pool / "images.npy", mmap=True)[idx]
    labels = store.load_npy(pool / "labels.npy")[idx]
    stats = store.read_json(folder / "stats.json")
    return ClassificationSplit(
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels),
        num_classes=store.read_json(pool / store.MANIFEST)["num_classes"],
        mean=tuple(stats["mean"]),
        std=tuple(stats["std"]),
    )


KIND = DatasetKind(
    settings=schema_settings("classification_data"),
    prepared_dir=prepared_dir,
    prepare=prepare,
    load=load,
)
"""Labelled images: a pool of every image, and a split of it (the module docstring)."""
