"""The study grid: ``params.yaml`` → validated settings → run ids → one run config per id.

``params.yaml`` holds every setting of the paper study; a named entry of ``presets`` (chosen by the
``preset`` key, or ``--preset`` / ``snakemake --config preset=...``) is merged over it, so the demo
and the paper grid share one file.  Everything is checked against
``workflow/schemas/params.schema.yaml`` and the model registry before any job starts.

Run ids are readable and stable: ``<study>/<model>/<conv>[-d<density>]/k<kernel>/s<seed>``, e.g.
``cls/resnet56/weighted-d0.75/k3/s0``; density values are joined by ``_`` (``d0.1_0.9``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from wconv.errors import UserError
from wconv.models import list_models
from wconv.nn.weighted import density_vectors

SCHEMA = Path(__file__).resolve().parent / "params.schema.yaml"
STUDIES = {
    "classification": ("cls", "classification"),
    "denoising": ("den", "denoising"),
    "coordgate": ("cg", "deblurring"),
}
PREFIX_TO_STUDY = {prefix: name for name, (prefix, _) in STUDIES.items()}
MODEL_TASK = {
    "classification": "classification",
    "denoising": "restoration",
    "deblurring": "deblurring",
}


def deep_merge(base: Any, override: Any) -> Any:
    """``override`` merged into ``base``: mappings recursively, everything else replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _explain(error: jsonschema.ValidationError) -> str:
    where = _path(error)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "enum":
        return f"params: {where} = {error.instance!r} is not allowed; use one of {schema['enum']}"
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return f"params: {where}: {error.message}; allowed keys: {allowed}"
    if error.validator == "required":
        return f"params: {where}: {error.message}"
    return f"params: {where}: {error.message}"


def validate_params(params: Mapping[str, Any]) -> None:
    """Schema and registry checks; raise ``UserError`` naming the key and the allowed values."""
    schema = yaml.safe_load(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: (len(e.path), str(e.path)))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise UserError(_explain(best))
    for study, (_, task) in STUDIES.items():
        section = params.get(study)
        if not section or not section.get("activate", True):
            continue
        valid = list_models(MODEL_TASK[task])
        for model in section["models"]:
            if model not in valid:
                raise UserError(
                    f"params: {study}.models has unknown model {model!r}; valid: {valid}"
                )
        for kernel in section["kernel_sizes"]:
            for density in densities_for(section, kernel):
                try:
                    density_vectors(density, (kernel, kernel), f"{study}.densities")
                except ValueError as error:
                    raise UserError(f"params: {error}") from None
        if section["data"].get("dataset") == "deblur":
            from wconv.data.deblur import resolve_deblur

            try:
                resolve_deblur(section["data"])
            except ValueError as error:
                raise UserError(f"params: {study}.{error}") from None


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


def resolve_params(raw: Mapping[str, Any], preset: str | None = None) -> dict[str, Any]:
    presets = raw.get("presets", {}) or {}
    name = preset or raw.get("preset")
    if name and name not in presets:
        raise UserError(
            f"params: preset {name!r} is not defined; defined presets: {sorted(presets)}"
        )
    params = {k: v for k, v in raw.items() if k != "presets"}
    if name:
        params = deep_merge(params, presets[name])
        params["preset"] = name
    validate_params(params)
    return params


def densities_for(section: Mapping[str, Any], kernel: int) -> list[Any]:
    """The weighted densities of a study for one kernel size (a list, or a mapping by size)."""
    densities = section.get("densities", [])
    if isinstance(densities, Mapping):
        return list(densities.get(kernel, densities.get(str(kernel), [])))
    return list(densities)


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

    @property
    def run_id(self) -> str:
        prefix = STUDIES[self.study][0]
        conv = self.conv if self.conv == "standard" else f"{self.conv}-d{density_tag(self.density)}"
        model = self.model if self.depth is None else f"{self.model}-L{self.depth}"
        return f"{prefix}/{model}/{conv}/k{self.kernel_size}/s{self.seed}"


def cells(params: Mapping[str, Any]) -> Iterator[Cell]:
    """Every grid cell of every active study, in a stable order."""
    for study in STUDIES:
        section = params.get(study)
        if not section or not section.get("activate", True):
            continue
        learned = section.get("learned", {}) or {}
        init = learned.get("init", {}) or {}
        for model, depth in product(section["models"], section.get("depths", [None])):
            for kernel, seed in product(section["kernel_sizes"], section["seeds"]):
                cell = {
                    "study": study, "model": model, "kernel_size": kernel, "seed": seed,
                    "depth": depth,
                }  # fmt: skip
                if "standard" in section["conv"]:
                    yield Cell(conv="standard", density=None, **cell)
                if "weighted" in section["conv"]:
                    for density in densities_for(section, kernel):
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


def run_config(params: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """The full config of one run, as ``wconv train`` consumes it."""
    cell = find_cell(params, run_id)
    section = params[cell.study]
    learned = section.get("learned", {}) or {}
    options = dict((section.get("model_options") or {}).get(cell.model, {}))
    if cell.depth is not None:
        options["depth"] = cell.depth
    return {
        "run_id": run_id,
        "task": STUDIES[cell.study][1],
        "model": cell.model,
        "model_options": options,
        "conv": cell.conv,
        "density": cell.density if cell.density is not None else 1.0,
        "density_range": learned.get("range") if cell.conv == "learned" else None,
        "kernel_size": cell.kernel_size,
        "seed": cell.seed,
        "data": section["data"],
        "data_root": params.get("paths", {}).get("data", "data"),
        "recipe": section["recipe"],
        "compute": params.get("compute", {}),
    }
