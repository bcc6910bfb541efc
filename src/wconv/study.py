"""The study grid: ``params.yaml`` → validated settings → run ids → one run config per id.

``params.yaml`` holds every setting of the paper study; a named entry of ``presets`` (chosen by the
``preset`` key, or ``--preset`` / ``snakemake --config preset=...``) is merged over it, so the demo
and the paper grid share one file.  Everything is checked against ``wconv/params.schema.yaml``
and the model registry (:mod:`wconv.settings`) before any job starts.

Run ids (:class:`wconv.vocabulary.RunId`) are readable and stable:
``<prefix>/<model>/<conv>[-d<density>]/k<kernel>/s<seed>``; density values are joined by ``_``
(``d0.1_0.9``), and a CoordGate model carries its U-Net depth (``unet-L3``).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from wconv import settings
from wconv.errors import UserError
from wconv.nn.weighted import density_vectors
from wconv.vocabulary import PREFIX_TO_STUDY as PREFIX_TO_STUDY  # re-exported for the workflow
from wconv.vocabulary import STUDIES, STUDY_TASK, RunId


def deep_merge(base: Any, override: Any) -> Any:
    """``override`` merged into ``base``: mappings recursively, everything else replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def validate_params(params: Mapping[str, Any]) -> None:
    """Schema, registry and grid checks; raise ``UserError`` naming the key and the allowed
    values."""
    try:
        settings.check(params)
    except ValueError as error:
        raise UserError(f"params: {error}") from None
    for study in STUDIES:
        section = params.get(study)
        if section and section.get("activate", True):
            settings.check_study(study, section)
    check_grid(params)


def load_params(path: str | Path = "params.yaml", preset: str | None = None) -> dict[str, Any]:
    """Read ``path``, apply the chosen preset, validate, and return the effective settings."""
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"params file {path} not found; run from the repository root or pass --params PATH"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"params file {path} is not valid YAML: {error}") from None
    return resolve_params(raw, preset)


def resolve_params(
    raw: Mapping[str, Any],
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The effective settings, merged in this order (later wins; docs/cluster.md):

    params.yaml's settings <- the chosen preset <- ``overrides`` (Snakemake's ``--configfile``
    files, then ``--config``). The preset is picked by ``overrides["preset"]``, else ``preset``,
    else params.yaml's ``preset``; an override of ``presets.X`` edits that preset before it applies.
    """
    overrides = dict(overrides or {})
    presets = deep_merge(raw.get("presets", {}) or {}, overrides.pop("presets", None) or {})
    name = overrides.pop("preset", None) or preset or raw.get("preset")
    if name and name not in presets:
        raise UserError(
            f"params: preset {name!r} is not defined; defined presets: {sorted(presets)}"
        )
    params = {k: v for k, v in raw.items() if k not in ("presets", "preset")}
    if name:
        params = deep_merge(params, presets[name])
        params["preset"] = name
    params = deep_merge(params, overrides)
    validate_params(params)
    return params


def densities_for(section: Mapping[str, Any], kernel: int) -> list[Any]:
    """The weighted densities of a study for one kernel size (a list, or a mapping by size)."""
    densities = section.get("densities", [])
    if isinstance(densities, Mapping):
        return list(densities.get(kernel, densities.get(str(kernel), [])))
    return list(densities)


def kernel_sizes_for(section: Mapping[str, Any], model: str | None = None) -> list[int]:
    """A study's kernel sizes for one model (``kernel_sizes``: a list for every model, or a
    mapping model → list); ``model=None``: every size any model of the study trains."""
    sizes = section["kernel_sizes"]
    if not isinstance(sizes, Mapping):
        return list(sizes)
    if model is not None:
        return list(sizes.get(model, []))
    return sorted({size for model_sizes in sizes.values() for size in model_sizes})


def density_tag(density: Any) -> str:
    flat: list[Any] = []
    for value in density if isinstance(density, list) else [density]:
        flat.extend(value if isinstance(value, list) else [value])
    return "_".join(f"{float(v):g}" for v in flat)


@dataclass(frozen=True)
class Cell:
    study: str
    model: str
    conv: str
    density: Any
    kernel_size: int
    seed: int
    depth: int | None = None  # the CoordGate study's U-Net depth d (a model-size axis)
    variant: str | None = None  # a recipe variant (``recipe_variants``), None: the study's recipe

    @property
    def run_id(self) -> str:
        return str(self.id)

    @property
    def id(self) -> RunId:
        tag = "" if self.conv == "standard" else density_tag(self.density)
        model = self.model if self.depth is None else f"{self.model}-L{self.depth}"
        if self.variant is not None:
            model = f"{model}-{self.variant}"
        return RunId.of(self.study, model, self.conv, tag, self.kernel_size, self.seed)


def recipe_variants(section: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each active recipe variant of a study section as the section it trains: the study's keys
    with the variant's on top (models, recipe, its own densities if it names them), standard and
    weighted cells only (no learned density) and no further variants."""
    return [
        (name, {**section, **variant, "learned": {}, "recipe_variants": {}})
        for name, variant in (section.get("recipe_variants") or {}).items()
        if variant.get("activate", True)
    ]


def cells(params: Mapping[str, Any]) -> Iterator[Cell]:
    """Every grid cell of every active study, in a stable order."""
    for study in STUDIES:
        section = params.get(study)
        if not section or not section.get("activate", True):
            continue
        # The study's own cells, then each recipe variant's.
        variants: list[tuple[str | None, Mapping[str, Any]]] = [(None, section)]
        variants += recipe_variants(section)
        for variant, axes in variants:
            learned = axes.get("learned", {}) or {}
            init = learned.get("init", {}) or {}
            grid = (
                (model, depth, kernel, seed)
                for model, depth in product(axes["models"], axes.get("depths", [None]))
                for kernel in kernel_sizes_for(axes, model)
                for seed in axes["seeds"]
            )
            for model, depth, kernel, seed in grid:
                cell = {
                    "study": study, "model": model, "kernel_size": kernel, "seed": seed,
                    "depth": depth, "variant": variant,
                }  # fmt: skip
                if "standard" in axes["conv"]:
                    yield Cell(conv="standard", density=None, **cell)
                if "weighted" in axes["conv"]:
                    for density in densities_for(axes, kernel):
                        yield Cell(conv="weighted", density=density, **cell)
                if learned.get("activate", False):
                    start = init.get(kernel, init.get(str(kernel), [1.0] * ((kernel - 1) // 2)))
                    yield Cell(conv="learned", density=start, **cell)


def run_ids(params: Mapping[str, Any]) -> list[str]:
    return [cell.run_id for cell in cells(params)]


def find_cell(params: Mapping[str, Any], run_id: str) -> Cell:
    for cell in cells(params):
        if cell.run_id == run_id:
            return cell
    raise UserError(
        f"run {run_id!r} is not in the grid of preset {params.get('preset')!r}; "
        "check params.yaml (models, densities, kernel_sizes, seeds)"
    )


def _repeated(values: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    repeated: list[Any] = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.append(value)
    return repeated


def _shape(density: Any) -> str:
    """A density's nesting and lengths: ``[0.9]`` -> ``1``, ``[[0.8], [0.8]]`` -> ``(1,1)``."""
    if not isinstance(density, list):
        return "scalar" if density is not None else "none"
    if all(isinstance(v, list) for v in density):
        return "(" + ",".join(str(len(v)) for v in density) + ")"
    return str(len(density))


def check_grid(params: Mapping[str, Any]) -> None:
    """Refuse a grid whose run ids repeat or whose cells' models do not build; warn when empty.

    Every distinct cell (seeds and density values aside) is built on the ``meta`` device, so a
    density or learned ``init`` that fits no kernel of a model is refused here, before any job is
    queued, instead of crashing the job on the cluster.  Building on ``meta`` allocates nothing.
    """
    active = [s for s in STUDIES if (params.get(s) or {}).get("activate", True) and params.get(s)]
    if not active:
        print(
            "warning: params: every study is switched off (activate: false), so the grid is empty; "
            f"set {'/'.join(STUDIES)}.activate: true to run one",
            file=sys.stderr,
        )
    for study in active:
        section = params[study]
        lists = {key: section.get(key, []) for key in ("models", "conv", "seeds", "depths")}
        for model in section["models"]:
            lists[f"kernel_sizes ({model})"] = kernel_sizes_for(section, model)
        for key, values in lists.items():
            repeated = _repeated(values)
            if repeated:
                raise UserError(
                    f"params: {study}.{key} lists {repeated} more than once, which would give "
                    f"duplicate run ids; list each value once"
                )
        for kernel in kernel_sizes_for(section):
            repeated = _repeated(density_tag(d) for d in densities_for(section, kernel))
            if repeated:
                raise UserError(
                    f"params: {study}.densities lists density {repeated} more than once for "
                    f"kernel size {kernel}, which would give duplicate run ids; list each once"
                )
    import torch

    from wconv.models import create

    grid = list(cells(params))
    ids: set[str] = set()
    for cell in grid:
        if cell.run_id in ids:
            raise UserError(
                f"params: run id {cell.run_id} appears twice in the grid; remove the repeated "
                f"value from {cell.study} (models, densities, kernel_sizes, seeds)"
            )
        ids.add(cell.run_id)
    # A standard cell runs the same builder code as its weighted twin, minus the densities: it
    # needs its own build only where the model has no weighted or learned cell (halves the cost).
    covered = {(c.study, c.model, c.depth, c.kernel_size) for c in grid if c.conv != "standard"}
    built: set[tuple[Any, ...]] = set()
    for cell in grid:
        if cell.conv == "standard" and (
            (cell.study, cell.model, cell.depth, cell.kernel_size) in covered
        ):
            continue
        config = _cell_config(params, cell)
        source = "learned.init" if cell.conv == "learned" else "densities"
        try:
            if cell.conv != "standard":
                size = cell.kernel_size
                density_vectors(config["density"], (size, size), f"{cell.study}.{source}")
            # Density values (checked just above) never decide whether a model builds; its shape
            # does. So one build per shape covers every density of a model: 3x fewer builds.
            key = (cell.study, cell.model, cell.depth, cell.conv, cell.kernel_size,
                   _shape(cell.density))  # fmt: skip
            if key in built:
                continue
            built.add(key)
            options = dict(config["model_options"])
            options.setdefault("kernel_size", cell.kernel_size)
            build = partial(
                create,
                cell.model,
                conv=cell.conv,
                density=config["density"],
                density_range=config["density_range"],
                **options,
            )
            try:
                with torch.device("meta"):
                    build()
            except (RuntimeError, NotImplementedError) as error:
                # A builder that reads tensor values (e.g. a PSF bank made from data) cannot run on
                # meta; those models are small, so build that one for real on the CPU.
                if "meta" not in str(error):
                    raise
                build()
        except (ValueError, TypeError, RuntimeError, NotImplementedError) as error:
            reason = " ".join(str(error).split())
            raise UserError(
                f"params: run {cell.run_id}: the model does not build ({reason}); fix "
                f"{cell.study}.{source} or {cell.study}.model_options.{cell.model}"
            ) from None


def run_config(params: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """The full config of one run, as ``wconv train`` consumes it."""
    return _cell_config(params, find_cell(params, run_id))


def _cell_config(params: Mapping[str, Any], cell: Cell) -> dict[str, Any]:
    run_id = cell.run_id
    section = params[cell.study]
    learned = section.get("learned", {}) or {}
    options = dict((section.get("model_options") or {}).get(cell.model, {}))
    if cell.depth is not None:
        options["depth"] = cell.depth
    return {
        "run_id": run_id,
        "task": STUDY_TASK[cell.study],
        "model": cell.model,
        "model_options": options,
        "conv": cell.conv,
        "density": cell.density if cell.density is not None else 1.0,
        "density_range": learned.get("range") if cell.conv == "learned" else None,
        "kernel_size": cell.kernel_size,
        "seed": cell.seed,
        "data": section["data"],
        "data_root": params.get("paths", {}).get("data", "data"),
        "recipe": (
            section["recipe"]
            if cell.variant is None
            else section["recipe_variants"][cell.variant]["recipe"]
        ),
        "compute": params.get("compute", {}),
    }
