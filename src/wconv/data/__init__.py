"""Data sets of the study behind one interface (see docs/data-api.md and docs/data.md).

``prepare(data_cfg, root, task=...)`` downloads, parses, splits and degrades once, caching
uint8/float32 arrays under ``root``; ``load_split(data_cfg, root, split, task=...)`` reads them
back as tensors. Both take a study's ``data:`` section of params.yaml, whose ``dataset`` is a
registered data set (``wconv data list``) or an alias that the ``task`` resolves (``embedded``:
offline scikit-learn digits or scikit-image photographs). Every function here looks the data set
up in the registry (``wconv.data.config``) and calls its kind; none depends on which one it is.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The data set modules register themselves on import.
from wconv.data import cifar, classification, deblur, div2k, embedded, restoration  # noqa: F401
from wconv.data.config import list_datasets, resolve
from wconv.data.loader import DeviceBatches
from wconv.data.splits import ClassificationSplit, RestorationSplit
from wconv.data.store import is_complete
from wconv.io import read_json, write_json

__all__ = [
    "PREPARE_COST",
    "ClassificationSplit",
    "DeviceBatches",
    "RestorationSplit",
    "describe",
    "list_datasets",
    "load_split",
    "prepare",
    "prepare_cost",
    "prepared_dir",
    "resolve",
]

# What preparing a folder cost, written beside its manifest by the process that prepared it (the
# rehearsal and the cost estimate read it): wall seconds, the process's peak resident memory, and
# the bytes of the data set's prepared tree (the folder's parent: shared arrays + this variant).
PREPARE_COST = "prepare-cost.json"


def prepare(data_cfg: Mapping[str, Any], root: str | Path, *, task: str | None = None) -> Path:
    """Make the data described by ``data_cfg`` ready under ``root`` and return its folder.
    Idempotent: a folder whose manifest exists is returned without any work.  ``task`` (a
    ``wconv.vocabulary.TASKS`` word) resolves an alias such as ``embedded``."""
    spec, cfg = resolve(data_cfg, task=task)
    root = Path(root)
    folder = spec.kind.prepared_dir(spec, cfg, root)
    if is_complete(folder):
        return folder
    started = time.perf_counter()
    folder = spec.kind.prepare(spec, cfg, root)
    if (folder / PREPARE_COST).exists():  # another job prepared it while this one waited
        return folder
    tree = sum(p.stat().st_size for p in folder.parent.rglob("*") if p.is_file())
    write_json(folder / PREPARE_COST, {
        "seconds": time.perf_counter() - started,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "prepared_bytes": tree,
    })  # fmt: skip
    return folder


def prepare_cost(
    data_cfg: Mapping[str, Any], root: str | Path, *, task: str | None = None
) -> dict[str, Any] | None:
    """The ``PREPARE_COST`` record of this data's folder; None if it was prepared without one."""
    path = prepared_dir(data_cfg, root, task=task) / PREPARE_COST
    return read_json(path) if path.is_file() else None


def describe(data_cfg: Mapping[str, Any], *, task: str | None = None) -> dict[str, Any]:
    """``{dataset, task, settings}``: the resolved settings of ``data_cfg`` (for stamps, logs)."""
    spec, cfg = resolve(data_cfg, task=task)
    return {"dataset": spec.name, "task": spec.task, "settings": cfg}


def prepared_dir(data_cfg: Mapping[str, Any], root: str | Path, *, task: str | None = None) -> Path:
    """The folder ``prepare`` returns for these settings, without preparing anything (for
    workflow rules that need to name the output in advance)."""
    spec, cfg = resolve(data_cfg, task=task)
    return spec.kind.prepared_dir(spec, cfg, Path(root))


def load_split(
    data_cfg: Mapping[str, Any], root: str | Path, split: str, *, task: str | None = None
) -> ClassificationSplit | RestorationSplit:
    """Load ``split`` (train | val | test) of prepared data; ``FileNotFoundError`` naming the
    ``wconv data prepare`` command if it was not prepared with these settings."""
    spec, cfg = resolve(data_cfg, task=task)
    return spec.kind.load(spec, cfg, Path(root), split)
