"""The registry of data sets, and a study's ``data:`` settings: defaults, validation, names.

Every data set is one :class:`DatasetSpec` registered under its own name (``wconv data list``):
``cifar100`` and ``embedded-cls`` (classification), ``div2k`` and ``embedded-den`` (denoising),
``deblur`` (the CoordGate deblurring study).  Its :class:`DatasetKind` (labelled images,
clean/noisy crops or blurred fields) says how its settings are completed and checked and how its
prepared folder is named, written and read back; the functions of :mod:`wconv.data` look the data
set up here and call its kind, nothing else.

``resolve(data_cfg, task=...)`` turns the section a user wrote into a complete, checked settings
dict (defaults filled in, ``null`` meaning "the default", unknown keys rejected so a typo cannot
be silently ignored).  The values are checked by the settings schema (``$defs`` of
``wconv/params.schema.yaml``, through :func:`wconv.settings.check`); this module checks only the
names it registers.

**Aliases.**  A name may stand for one data set per task: ``dataset: embedded`` is
``embedded-cls`` for the classification task and ``embedded-den`` for the denoising task.  The
task is passed by the caller that knows it (a study's task, ``wconv.vocabulary.STUDY_TASK``, or a
run config's ``task``), never guessed from the keys of the section; an alias without a task is an
error naming the data sets it stands for.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from wconv import settings
from wconv.data import noise
from wconv.vocabulary import TASKS

if TYPE_CHECKING:
    from wconv.data.splits import ClassificationSplit, RestorationSplit

# Network options shared by every downloadable source; ``source`` of a study may override them.
NETWORK_DEFAULTS: dict[str, Any] = {"retries": 3, "backoff": 2.0, "timeout": 60.0}


@dataclass(frozen=True)
class DatasetKind:
    """What the data sets of one layout share (``wconv.data.classification``: labelled images,
    ``wconv.data.restoration``: clean/noisy crops, ``wconv.data.deblur``: blurred fields).

    ``settings(spec, user, where)`` completes and checks a data section (without ``dataset``);
    the others take the data set and its complete settings: ``prepared_dir(spec, cfg, root)``
    names the folder ``prepare(spec, cfg, root)`` writes, ``load(spec, cfg, root, split)`` reads
    one split of it back."""

    settings: Callable[[DatasetSpec, dict[str, Any], str], dict[str, Any]]
    prepared_dir: Callable[[DatasetSpec, dict[str, Any], Path], Path]
    prepare: Callable[[DatasetSpec, dict[str, Any], Path], Path]
    load: Callable[[DatasetSpec, dict[str, Any], Path, str], ClassificationSplit | RestorationSplit]


@dataclass(frozen=True)
class DatasetSpec:
    """One registered data set.  ``task`` is the task it serves (``wconv.vocabulary.TASKS``);
    ``build``, where the kind uses one, is called with the resolved settings and the data set's
    folder and returns a ``classification.Pool`` or the source images of each split
    (``restoration.ImageRef``); ``alias`` is a name it shares with data sets of other tasks."""

    name: str
    task: str
    kind: DatasetKind
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    build: Callable[..., Any] | None = None
    alias: str | None = None
    downloads: bool = True  # False: bundled with the code; a ``source`` section must be all null

    def build_data(self, cfg: dict[str, Any], folder: Path) -> Any:
        """``build(cfg, folder)``, for the kinds that cut a data set out of source images."""
        if self.build is None:
            raise TypeError(f"data set {self.name!r} has no build function")
        return self.build(cfg, folder)


_SPECS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in _SPECS or spec.name in aliases():
        raise ValueError(
            f"data set {spec.name!r} is registered twice (or is an alias); give it another name"
        )
    if spec.task not in TASKS:
        raise ValueError(
            f"data set {spec.name!r} has unknown task {spec.task!r}; use one of {list(TASKS)}"
        )
    if spec.alias is not None:
        if spec.alias in _SPECS:
            raise ValueError(f"alias {spec.alias!r} of {spec.name!r} is a data set's name")
        taken = aliases().get(spec.alias, {}).get(spec.task)
        if taken is not None:
            raise ValueError(
                f"alias {spec.alias!r} already names {taken!r} for {spec.task}; one per task"
            )
    _SPECS[spec.name] = spec
    return spec


def list_datasets() -> list[str]:
    """The names of the registered data sets, sorted."""
    return sorted(_SPECS)


def aliases() -> dict[str, dict[str, str]]:
    """Alias -> task -> the data set it names for that task."""
    out: dict[str, dict[str, str]] = {}
    for spec in _SPECS.values():
        if spec.alias is not None:
            out.setdefault(spec.alias, {})[spec.task] = spec.name
    return {alias: out[alias] for alias in sorted(out)}


def dataset_names(task: str | None = None) -> list[str]:
    """The names a ``data.dataset`` may have (of ``task``'s data sets when given): aliases first,
    then the data sets."""
    specs = [s for s in _SPECS.values() if task is None or s.task == task]
    alias_names = sorted({s.alias for s in specs if s.alias})
    return alias_names + sorted(s.name for s in specs)


def get_spec(name: str, task: str | None = None, where: str = "data") -> DatasetSpec:
    """The data set ``name`` names: a registered name, or an alias resolved by ``task``.  With a
    ``task``, a data set of another task is refused.  ``ValueError`` (one line, naming the
    valid names) otherwise; ``where`` is the section's name in it."""
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {list(TASKS)}")
    stands_for = aliases().get(name)
    if stands_for is None:
        spec = _SPECS.get(name)
    elif task is None:
        listed = ", ".join(f"{of}: {target}" for of, target in stands_for.items())
        raise ValueError(
            f"{where}.dataset {name!r} names one data set per task ({listed}) and no task was "
            "given; name one of them, or pass the task of the study it belongs to"
        )
    else:
        spec = _SPECS.get(stands_for.get(task, ""))
    if spec is not None and (task is None or spec.task == task):
        return spec
    if task is None:
        raise ValueError(
            f"unknown data set {name!r}; valid data sets: {', '.join(dataset_names())}"
        )
    raise ValueError(
        f"{where}.dataset = {name!r} is not allowed; use one of {dataset_names(task)} "
        f"(the {task} data sets)"
    )


def default_sources() -> dict[str, Any]:
    """The official URLs, checksums and image counts shipped in ``wconv/data/sources.yaml``."""
    text = importlib.resources.files("wconv.data").joinpath("sources.yaml").read_text()
    return yaml.safe_load(text)


def resolve(
    data_cfg: Mapping[str, Any], where: str = "data", *, task: str | None = None
) -> tuple[DatasetSpec, dict[str, Any]]:
    """Validate a ``data:`` section and return its data set and the complete settings (with
    ``dataset`` set to the data set's own name).  ``task`` resolves an alias and refuses the
    data sets of other tasks.  ``ValueError`` messages name keys from ``where`` (e.g.
    ``denoising.data``) on."""
    if not isinstance(data_cfg, Mapping):
        raise ValueError(f"the data section must be a mapping, got {type(data_cfg).__name__}")
    name = data_cfg.get("dataset")
    if not isinstance(name, str):
        choices = ", ".join(dataset_names(task))
        raise ValueError(f"{where}.dataset is missing or not a string; set it to one of: {choices}")
    spec = get_spec(name, task, where)
    cfg = spec.kind.settings(spec, {k: v for k, v in data_cfg.items() if k != "dataset"}, where)
    cfg["dataset"] = spec.name
    return spec, cfg


def schema_settings(
    schema: str,
) -> Callable[[DatasetSpec, dict[str, Any], str], dict[str, Any]]:
    """The ``DatasetKind.settings`` of data sets whose settings are their ``defaults`` checked by
    ``$defs/<schema>`` of the settings schema (with a ``noise`` section completed by its model)."""

    def complete(spec: DatasetSpec, user: dict[str, Any], where: str) -> dict[str, Any]:
        if not spec.downloads:
            # The shared params layout may carry an all-null ``source``; anything set is a mistake.
            _check_no_source(user.pop("source", None), spec.name, f"{where}.source")
        cfg = settings.fill(spec.defaults, user)
        if "noise" in spec.defaults:
            cfg["noise"] = noise.resolve_noise(cfg["noise"], f"{where}.noise")
        settings.check(cfg, schema, where)
        return _as_defaults(cfg, spec.defaults)

    return complete


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
