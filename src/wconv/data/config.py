"""A study's ``data:`` settings: defaults, validation, and the registry of data sets.

``resolve(data_cfg)`` turns the section a user wrote into a complete, checked settings dict
(defaults filled in, ``null`` meaning "the default", unknown keys rejected so a typo cannot be
silently ignored) and finds the data set that handles it. Data sets register a
``DatasetSpec``; ``dataset: embedded`` is an alias resolved by the keys present: a section with
one of a spec's ``markers`` (``noise`` / ``patch_size`` for denoising) picks that spec, otherwise
the spec without markers (classification) is used.
"""

from __future__ import annotations

import copy
import importlib.resources
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wconv.data import noise

TASKS = ("classification", "restoration")

# Network options shared by every downloadable source; ``source`` of a study may override them.
NETWORK_DEFAULTS: dict[str, Any] = {"retries": 3, "backoff": 2.0, "timeout": 60.0}
_POSITIVE = {"patch_size", "patches_per_image", "eval_crop", "count", "timeout"}


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
    if spec.task not in TASKS:
        raise ValueError(f"data set {spec.name!r} has unknown task {spec.task!r}; use {TASKS}")
    _SPECS[spec.name] = spec
    return spec


def list_datasets() -> list[str]:
    return sorted(_SPECS)


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


def resolve(data_cfg: Mapping[str, Any]) -> tuple[DatasetSpec, dict[str, Any]]:
    """Validate a ``data:`` section and return its data set and the complete settings."""
    if not isinstance(data_cfg, Mapping):
        raise ValueError(f"the data section must be a mapping, got {type(data_cfg).__name__}")
    name = data_cfg.get("dataset")
    if not isinstance(name, str):
        choices = ", ".join(["embedded", *list_datasets()])
        raise ValueError(f"data.dataset is missing or not a string; set it to one of: {choices}")
    spec = _by_name_or_alias(name, data_cfg)
    user = {k: v for k, v in data_cfg.items() if k != "dataset"}
    if not spec.downloads:
        # The shared params layout may carry an all-null ``source``; anything set is a mistake.
        _check_no_source(user.pop("source", None), spec.name)
    cfg = _merge(spec.defaults, user, "data")
    cfg["dataset"] = spec.name
    return spec, cfg


def _by_name_or_alias(name: str, data_cfg: Mapping[str, Any]) -> DatasetSpec:
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
            f"data.dataset {name!r} is ambiguous here; name one of "
            f"{', '.join(s.name for s in candidates)} instead"
        )
    return chosen[0]


def _merge(defaults: Mapping[str, Any], user: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(user, Mapping):
        raise ValueError(f"{where} must be a mapping, got {user!r}")
    unknown = sorted(set(user) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown key {where}.{unknown[0]}; valid keys here: {', '.join(sorted(defaults))}"
        )
    out: dict[str, Any] = {}
    for key, default in defaults.items():
        value = user.get(key)
        if key == "noise":
            out[key] = noise.resolve_noise(value, f"{where}.noise")
        elif isinstance(default, Mapping):
            out[key] = _merge(default, value or {}, f"{where}.{key}")
        elif value is None:
            out[key] = copy.deepcopy(default)
        else:
            out[key] = _check_value(f"{where}.{key}", key, value, default)
    return out


def _check_value(where: str, key: str, value: Any, default: Any) -> Any:
    if key == "val_fraction":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise ValueError(f"{where} must be a number in (0, 1), got {value!r}")
        return float(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where} must be a non-negative integer, got {value!r}")
        if key in _POSITIVE and value == 0:
            raise ValueError(f"{where} must be positive, got 0")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{where} must be a non-negative number, got {value!r}")
        if key in _POSITIVE and value == 0:
            raise ValueError(f"{where} must be positive, got 0")
        return float(value)
    # Strings: URLs, checksums, archive paths (defaults may be None).
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a non-empty string, got {value!r}")
    if key == "md5" and not _is_md5(value):
        raise ValueError(f"{where} must be 32 hexadecimal digits, got {value!r}")
    return value


def _is_md5(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdefABCDEF" for c in text)


def downloadable_source(part: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults of one downloadable archive: its official url/md5 (and count) plus ``archive``."""
    return {"url": part["url"], "md5": part["md5"], "archive": None} | (
        {"count": part["count"]} if "count" in part else {}
    )


def _check_no_source(source: Any, name: str, where: str = "data.source") -> None:
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
