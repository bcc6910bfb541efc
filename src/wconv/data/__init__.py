"""Data sets of the study behind one interface (see docs/data-api.md and docs/data.md).

``prepare(data_cfg, root)`` downloads, parses, splits and degrades once, caching uint8/float32
arrays under ``root``; ``load_split(data_cfg, root, split)`` reads them back as tensors. Both
take a study's ``data:`` section of params.yaml; ``dataset`` is ``embedded`` (offline:
scikit-learn digits or scikit-image photographs), ``cifar100`` or ``div2k``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The data set modules register themselves on import.
from wconv.data import cifar, classification, deblur, div2k, embedded, restoration  # noqa: F401
from wconv.data.config import list_datasets, resolve
from wconv.data.loader import DeviceBatches
from wconv.data.splits import ClassificationSplit, RestorationSplit
from wconv.vocabulary import FAMILY

__all__ = [
    "ClassificationSplit",
    "DeviceBatches",
    "RestorationSplit",
    "describe",
    "list_datasets",
    "load_split",
    "prepare",
    "prepared_dir",
    "resolve",
]

# DatasetSpec.task -> the module that prepares and loads it (labelled images, image pairs).
_TASKS = {FAMILY["classification"]: classification, FAMILY["denoising"]: restoration}


def _is_deblur(data_cfg: Mapping[str, Any]) -> bool:
    # The CoordGate deblurring fields are built by wconv.data.deblur (spatially-varying PSF).
    return data_cfg.get("dataset") == "deblur"


def prepare(data_cfg: Mapping[str, Any], root: str | Path) -> Path:
    """Make the data described by ``data_cfg`` ready under ``root`` and return its folder.
    Idempotent: a folder whose manifest exists is returned without any work."""
    if _is_deblur(data_cfg):
        return deblur.prepare_deblur(data_cfg, Path(root))
    spec, cfg = resolve(data_cfg)
    return _TASKS[spec.task].prepare(spec, cfg, Path(root))


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
