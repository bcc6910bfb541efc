"""A study's ``data:`` settings: defaults, validation, and the registry of data sets.

``resolve(data_cfg)`` turns the section a user wrote into a complete, checked settings dict
(defaults filled in, ``null`` meaning "the default", unknown keys rejected so a typo cannot be
silently ignored) and finds the data set that handles it.  The values are checked by the
settings schema (``classification_data`` / ``denoising_data`` of ``wconv/params.schema.yaml``,
through :func:`wconv.settings.check`); this module checks only the names it registers.  Data
sets register a ``DatasetSpec``; ``dataset: embedded`` is an alias resolved by the keys present:
a section with one of a spec's ``markers`` (``noise`` / ``patch_size`` for denoising) picks that
spec, otherwise the spec without markers (classification) is used.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wconv import settings
from wconv.data import noise
from wconv.vocabulary import FAMILY

KINDS: dict[str, str] = {FAMILY["classification"]: "classification_data",
                         FAMILY["denoising"]: "denoising_data"}  # fmt: skip
"""``DatasetSpec.task`` (labelled images, or clean/noisy image pairs) -> the schema of its
settings (``$defs`` of ``wconv/params.schema.yaml``)."""

# Network options shared by every downloadable source; ``source`` of a study may override them.
NETWORK_DEFAULTS: dict[str, Any] = {"retries": 3, "backoff": 2.0, "timeout": 60.0}


@dataclass(frozen=True)
class DatasetSpec:
    """How one data set is prepared: ``build`` is called with the resolved settings and the data
    set's folder and returns a ``classification.Pool`` (classification) or the source images of
    each split (restoration, see ``restoration.ImageRef``)."""

    name: str
    task: str
    defaults: Mapping[str, Any]
    build: Callable[..., Any]
    description: str
    alias: str | None = None
    markers: tuple[str, ...] = field(default=())
    downloads: bool = True  # False: bundled with the code; a ``source`` section must be all null


_SPECS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in _SPECS:
        raise ValueError(f"data set {spec.name!r} is registered twice")
    if spec.task not in KINDS:
        raise ValueError(
            f"data set {spec.name!r} has unknown task {spec.task!r}; use one of {list(KINDS)}"
        )
    _SPECS[spec.name] = spec
    return spec


def list_datasets() -> list[str]:
    return sorted(_SPECS)


def dataset_names(task: str) -> list[str]:
    """The names a ``data.dataset`` of ``task`` (a ``DatasetSpec.task``) may have: aliases
    first, then the data sets."""
    specs = [s for s in _SPECS.values() if s.task == task]
    aliases = sorted({s.alias for s in specs if s.alias})
    return aliases + sorted(s.name for s in specs)


def get_spec(name: str) -> DatasetSpec:
    if name not in _SPECS:
        raise ValueError(
            f"unknown data set {name!r}; valid data sets: {', '.join(list_datasets())}"
        )
    return _SPECS[name]


def default_sources() -> dict[str, Any]:
    """The official URLs, checksums and image counts shipped in ``wconv/data/sources.yaml``."""
    text = importlib.resources.files("wconv.data").joinpath("sources.yaml").read_text()
    return yaml.safe_load(text)


def resolve(data_cfg: Mapping[str, Any], where: str = "data") -> tuple[DatasetSpec, dict[str, Any]]:
    """Validate a ``data:`` section and return its data set and the complete settings.
    ``ValueError`` messages name keys from ``where`` (e.g. ``denoising.data``) on."""
    if not isinstance(data_cfg, Mapping):
        raise ValueError(f"the data section must be a mapping, got {type(data_cfg).__name__}")
    name = data_cfg.get("dataset")
    if not isinstance(name, str):
        choices = ", ".join(["embedded", *list_datasets()])
        raise ValueError(f"{where}.dataset is missing or not a string; set it to one of: {choices}")
    spec = _by_name_or_alias(name, data_cfg, where)
    user = {k: v for k, v in data_cfg.items() if k != "dataset"}
    if not spec.downloads:
        # The shared params layout may carry an all-null ``source``; anything set is a mistake.
        _check_no_source(user.pop("source", None), spec.name, f"{where}.source")
    cfg = settings.fill(spec.defaults, user)
    if "noise" in spec.defaults:
        cfg["noise"] = noise.resolve_noise(cfg["noise"], f"{where}.noise")
    settings.check(cfg, KINDS[spec.task], where)
    cfg = _as_defaults(cfg, spec.defaults)
    cfg["dataset"] = spec.name
    return spec, cfg


def _as_defaults(cfg: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers in the type of their default (``val_fraction: 1`` -> 1.0, ``patch_size: 32.0`` ->
    32), so equal settings give equal cache digests."""
    for key, default in defaults.items():
        value = cfg.get(key)
        if isinstance(default, Mapping) and isinstance(value, dict):
            cfg[key] = _as_defaults(value, default)
        elif isinstance(value, bool) or isinstance(default, bool) or value is None:
            continue
        elif isinstance(default, float) and isinstance(value, int):
            cfg[key] = float(value)
        elif isinstance(default, int) and isinstance(value, float):
            cfg[key] = int(value)  # the schema let only whole numbers through
    return cfg


def _by_name_or_alias(name: str, data_cfg: Mapping[str, Any], where: str) -> DatasetSpec:
    if name in _SPECS:
        return _SPECS[name]
    candidates = [s for s in _SPECS.values() if s.alias == name]
    if not candidates:
        aliases = sorted({s.alias for s in _SPECS.values() if s.alias})
        raise ValueError(
            f"unknown data set {name!r}; valid data sets: {', '.join(aliases + list_datasets())}"
        )
    marked = [s for s in candidates if any(k in data_cfg for k in s.markers)]
    unmarked = [s for s in candidates if not s.markers]
    chosen = marked or unmarked
    if len(chosen) != 1:
        raise ValueError(
            f"{where}.dataset {name!r} is ambiguous here; name one of "
            f"{', '.join(s.name for s in candidates)} instead"
        )
    return chosen[0]


def downloadable_source(part: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults of one downloadable archive: its official url/md5 (and count) plus ``archive``."""
    return {"url": part["url"], "md5": part["md5"], "archive": None} | (
        {"count": part["count"]} if "count" in part else {}
    )


def _check_no_source(source: Any, name: str, where: str) -> None:
    if isinstance(source, Mapping):
        for key, value in source.items():
            _check_no_source(value, name, f"{where}.{key}")
    elif source is not None:
        raise ValueError(
            f"data set {name!r} is bundled with the code and downloads nothing; remove {where}"
        )


def content_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``source`` that decides what the data are: checksums, image counts and
    unpacked folders given as ``archive``. URLs and network options do not change the content,
    so a mirror reuses the caches built from the official files."""

    def part(p: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: p[k] for k in ("md5", "count") if k in p}
        folder = Path(p["archive"]).expanduser() if p.get("archive") else None
        if folder is not None and folder.is_dir():
            out = {k: v for k, v in out.items() if k != "md5"} | {"archive": str(folder.resolve())}
        return out

    source = cfg.get("source") or {}
    if "url" in source:
        return part(source)
    return {k: part(v) for k, v in sorted(source.items()) if isinstance(v, Mapping)}


def not_prepared_message(name: str, root: Path) -> str:
    return (
        f"data set {name!r} with these settings is not prepared under {root}; run "
        f"`wconv data prepare {name} --root {root}` first (with --params FILE --study NAME to use "
        "a study's data settings)"
    )
