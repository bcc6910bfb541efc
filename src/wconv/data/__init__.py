"""Data sets of the study behind one interface (see docs/data-api.md and docs/data.md).

``prepare(data_cfg, root)`` downloads, parses, splits and degrades once, caching uint8/float32
arrays under ``root``; ``load_split(data_cfg, root, split)`` reads them back as tensors. Both
take a study's ``data:`` section of params.yaml; ``dataset`` is ``embedded`` (offline:
scikit-learn digits or scikit-image photographs), ``cifar100`` or ``div2k``.
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
from wconv.vocabulary import FAMILY

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

# DatasetSpec.task -> the module that prepares and loads it (labelled images, image pairs).
_TASKS = {FAMILY["classification"]: classification, FAMILY["denoising"]: restoration}


def _is_deblur(data_cfg: Mapping[str, Any]) -> bool:
    # The CoordGate deblurring fields are built by wconv.data.deblur (spatially-varying PSF).
    return data_cfg.get("dataset") == "deblur"


# What preparing a folder cost, written beside its manifest by the process that prepared it (the
# rehearsal and the cost estimate read it): wall seconds, the process's peak resident memory, and
# the bytes of the data set's prepared tree (the folder's parent: shared arrays + this variant).
PREPARE_COST = "prepare-cost.json"


def prepare(data_cfg: Mapping[str, Any], root: str | Path) -> Path:
    """Make the data described by ``data_cfg`` ready under ``root`` and return its folder.
    Idempotent: a folder whose manifest exists is returned without any work."""
    folder = prepared_dir(data_cfg, root)
    if is_complete(folder):
        return folder
    started = time.perf_counter()
    if _is_deblur(data_cfg):
        folder = deblur.prepare_deblur(data_cfg, Path(root))
    else:
        spec, cfg = resolve(data_cfg)
        folder = _TASKS[spec.task].prepare(spec, cfg, Path(root))
    if (folder / PREPARE_COST).exists():  # another job prepared it while this one waited
        return folder
    tree = sum(p.stat().st_size for p in folder.parent.rglob("*") if p.is_file())
    write_json(folder / PREPARE_COST, {
        "seconds": time.perf_counter() - started,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "prepared_bytes": tree,
    })  # fmt: skip
    return folder


def prepare_cost(data_cfg: Mapping[str, Any], root: str | Path) -> dict[str, Any] | None:
    """The ``PREPARE_COST`` record of this data's folder; None if it was prepared without one."""
    path = prepared_dir(data_cfg, root) / PREPARE_COST
    return read_json(path) if path.is_file() else None


def describe(data_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``{dataset, task, settings}``: the resolved settings of ``data_cfg`` (for stamps, logs)."""
    if _is_deblur(data_cfg):
        return {"dataset": "deblur", "task": "deblurring",
                "settings": deblur.resolve_deblur(data_cfg)}  # fmt: skip
    spec, cfg = resolve(data_cfg)
    return {"dataset": spec.name, "task": spec.task, "settings": cfg}


def prepared_dir(data_cfg: Mapping[str, Any], root: str | Path) -> Path:
    """The folder ``prepare`` returns for these settings, without preparing anything (for
    workflow rules that need to name the output in advance)."""
    if _is_deblur(data_cfg):
        return deblur.deblur_folder(data_cfg, Path(root))
    spec, cfg = resolve(data_cfg)
    return _TASKS[spec.task].prepared_dir(spec, cfg, Path(root))


def load_split(
    data_cfg: Mapping[str, Any], root: str | Path, split: str
) -> ClassificationSplit | RestorationSplit:
    """Load ``split`` (train | val | test) of prepared data; ``FileNotFoundError`` naming the
    ``wconv data prepare`` command if it was not prepared with these settings."""
    if _is_deblur(data_cfg):
        return deblur.load_deblur_split(data_cfg, Path(root), split)
    spec, cfg = resolve(data_cfg)
    return _TASKS[spec.task].load(spec, cfg, Path(root), split)
