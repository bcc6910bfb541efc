"""One validator for the study's settings, and the defaults that are code, not schema.

``params.schema.yaml`` (JSON Schema draft 2020-12) holds every allowed value.  :func:`check`
validates a whole params file or one of the schema's ``$defs`` on its own (a run config, a data
section, a noise section) and raises ``ValueError`` with one line that names the key, the rule
and the value.  The checks that need code are here too: names that code defines (registered
models of a task, recipes, study and task names from :mod:`wconv.vocabulary`) and density
shapes (:func:`check_study` for a study of ``params.yaml``, :func:`resolve_run_config` for one
run).  Registries check their own names where they live: data sets (``wconv.data.config``),
noise models (``wconv.data.noise``), bundled images and PSF geometry (``wconv.data.deblur``).
Other modules read validated settings and do not check them again.

Torch-free at import: the model registry is imported only by the checks that need it.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from wconv.errors import UserError
from wconv.vocabulary import FAMILY, PADDING_MODES, SPLITS, STUDY_TASK, TASKS, TRAIN_JOBS

SCHEMA_PATH = Path(__file__).resolve().parent / "params.schema.yaml"

RECIPES: dict[str, dict[str, Any]] = {
    # The paper's classification recipe (arXiv 2505.24558), as it describes it.
    "paper_classification": {
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 5e-5,
        "schedule": "cosine",
        "warmup_epochs": 0,
        "epochs": 200,
        "patience": 20,
        "min_delta": 0.0,
        "label_smoothing": 0.1,
        "batch_size": 128,
        "flip": True,
        "crop_padding": 0,
        "density_lr": 0.01,
        "grad_clip": None,
    },
    # A well-tuned CIFAR baseline (crop + flip, 5e-4 weight decay, Nesterov, warm-up): does the
    # weighted conv's gain survive a strong baseline?
    "strong_classification": {
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
        "schedule": "cosine",
        "warmup_epochs": 5,
        "epochs": 200,
        "patience": 200,
        "min_delta": 0.0,
        "label_smoothing": 0.1,
        "batch_size": 128,
        "flip": True,
        "crop_padding": 4,
        "density_lr": 0.01,
        "grad_clip": None,
    },
    # The paper's denoising recipe (arXiv 2505.24558). It writes lr 0.1 for Adam; that is kept as
    # the paper's value and a working lr is set in params.yaml.
    "paper_denoising": {
        "optimizer": "adam",
        "lr": 0.1,
        "betas": [0.9, 0.999],
        "weight_decay": 0.0,
        "schedule": "cosine",
        "warmup_epochs": 0,
        "epochs": 100,
        "patience": 10,
        "min_delta": 0.0,
        "batch_size": 16,
        "flip": True,
        "crop_padding": 0,
        "density_lr": 0.01,
        "grad_clip": None,
    },
}
"""Training recipes by name: a study's ``recipe: {name: ...}`` starts from one of these."""

COMPUTE_DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "channels_last": False,
    "amp": "none",
    "compile": False,
    "cuda_graph": False,
    "deterministic": False,
    "threads": None,
    "checkpoints": "all",
}
"""A run's ``compute`` settings where neither params.yaml nor the run config sets them."""

RUN_DEFAULTS: dict[str, Any] = {
    "kernel_size": 3,
    "density": 1.0,
    "density_range": None,
    "model_options": {},
    "data_root": "data",
}
"""Keys of a run config that may be left out."""


# ------------------------------------------------------------------------------ the schema


# $defs whose allowed values are lists of the vocabulary module (written once, there).
_VOCABULARY_ENUMS: dict[str, tuple[str, ...]] = {
    "split": SPLITS,
    "padding_mode": PADDING_MODES,
    "train_job": TRAIN_JOBS,
}


@functools.cache
def schema() -> dict[str, Any]:
    """The parsed ``params.schema.yaml`` (shared: do not modify it)."""
    loaded: dict[str, Any] = yaml.safe_load(SCHEMA_PATH.read_text())
    for name, values in _VOCABULARY_ENUMS.items():
        loaded["$defs"][name]["enum"] = list(values)
    return loaded


@functools.cache
def _validator(definition: str | None) -> jsonschema.Draft202012Validator:
    root = schema()
    if definition is None:
        return jsonschema.Draft202012Validator(root)
    if definition not in root["$defs"]:
        raise KeyError(f"{definition!r} is not in {SCHEMA_PATH.name}'s $defs")
    return jsonschema.Draft202012Validator(
        {"$defs": root["$defs"], "$ref": f"#/$defs/{definition}"}
    )


def check(instance: Any, definition: str | None = None, where: str = "") -> None:
    """Validate ``instance`` against the whole schema (``definition=None``: a params file) or
    against ``$defs/<definition>``; ``ValueError`` with one line naming the key, whose path
    starts with ``where`` (e.g. ``"data"``)."""
    errors = sorted(
        _validator(definition).iter_errors(instance), key=lambda e: (len(e.path), str(e.path))
    )
    if errors:
        raise ValueError(explain(jsonschema.exceptions.best_match(errors), where))


def explain(error: jsonschema.ValidationError, where: str = "") -> str:
    """One line for a schema error: the key, what it must be, and the value it has."""
    at = _join(where, *error.absolute_path)
    rule = error.schema if isinstance(error.schema, Mapping) else {}
    value = error.instance
    if "propertyNames" in error.absolute_schema_path:  # a key outside a closed set of names
        valid = ", ".join(str(v) for v in rule.get("enum", []))
        return f"unknown key {_join(at, value)}; valid keys: {valid}"
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        known = _known_keys(rule)
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            return f"unknown key {_join(at, unknown[0])}; valid keys: {', '.join(sorted(known))}"
    if error.validator == "enum":
        return f"{at or 'the value'} = {value!r} is not allowed; use one of {rule['enum']}"
    if error.validator == "const":
        return f"{at or 'the value'} = {value!r} is not allowed; use {rule['const']!r}"
    if error.validator == "uniqueItems":
        return f"{at} lists a value more than once ({value!r}); list each value once"
    if error.validator in _VALUE_RULES:
        expected = _expected(rule)
        if expected:
            return f"{at or 'the value'} must be {expected}, got {value!r}"
    return f"{at or '<top level>'}: {error.message}"


_VALUE_RULES = {
    "type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "not",
    "minLength", "maxLength", "pattern", "minItems", "maxItems",
}  # fmt: skip


def _join(*parts: Any) -> str:
    return ".".join(str(p) for p in parts if p != "")


def _resolve(rule: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = rule.get("$ref", "")
    return schema()["$defs"][ref.rsplit("/", 1)[1]] if ref.startswith("#/$defs/") else {}


def _known_keys(rule: Mapping[str, Any]) -> set[str]:
    """The keys ``rule`` (with what it refers to and combines) names as properties."""
    keys = {str(k) for k in rule.get("properties", {})}
    parts = [_resolve(rule), *rule.get("allOf", []), rule.get("then", {})]
    for part in parts:
        if isinstance(part, Mapping) and part:
            keys |= _known_keys(part)
    return keys


def _expected(rule: Mapping[str, Any]) -> str | None:
    """What a value must be, in words: ``a number in (0, 1)``, ``true or false``, ...

    A ``description`` on a single value (not a mapping or list) is taken as those words."""
    types = rule.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    nullable = "null" in types
    types = [t for t in types if t != "null"]
    if rule.get("description") and not {"object", "array"} & set(types):
        text = str(rule["description"])
    elif "enum" in rule:
        text = f"one of {rule['enum']}"
    elif types == ["boolean"]:
        text = "true or false"
    elif types in (["integer"], ["number"]):
        text = _number_rule(rule, types[0])
    elif types == ["string"]:
        text = "a non-empty string" if rule.get("minLength") else "a string"
    elif types == ["array"]:
        text = _list_rule(rule)
    elif types == ["object"]:
        text = "a mapping"
    elif types:
        text = " or ".join(_NOUNS.get(t, t) for t in types)
    else:
        return None
    return f"{text} or null" if nullable else text


_NOUNS = {"number": "a number", "integer": "an integer", "string": "a string",
          "array": "a list", "object": "a mapping", "boolean": "true or false"}  # fmt: skip


def _number_rule(rule: Mapping[str, Any], kind: str) -> str:
    odd = rule.get("not") == {"multipleOf": 2}
    noun = "an odd integer" if odd else "an integer" if kind == "integer" else "a number"
    lo_open, hi_open = "exclusiveMinimum" in rule, "exclusiveMaximum" in rule
    lo = rule.get("exclusiveMinimum", rule.get("minimum"))
    hi = rule.get("exclusiveMaximum", rule.get("maximum"))
    if lo is not None and hi is not None:
        text = f"{noun} in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    elif lo == 0 and not odd:
        text = f"a positive {kind}" if lo_open else f"a non-negative {kind}"
    elif lo == 1 and kind == "integer" and not lo_open and not odd:
        text = "a positive integer"
    elif lo is not None:
        text = f"{noun} {'>' if lo_open else '>='} {lo}"
    elif hi is not None:
        text = f"{noun} {'<' if hi_open else '<='} {hi}"
    else:
        text = noun
    if "multipleOf" in rule:
        text += f" and a multiple of {rule['multipleOf']}"
    return text


def _list_rule(rule: Mapping[str, Any]) -> str:
    low, high = rule.get("minItems", 0), rule.get("maxItems")
    if high is not None and low == high:
        return f"a list of {low} values"
    if high is not None:
        return f"a list of {low} to {high} values"
    if low == 1:
        return "a non-empty list"
    return f"a list of at least {low} values" if low else "a list"


def fill(defaults: Mapping[str, Any], user: Any) -> Any:
    """``user`` over ``defaults``: mappings merged key by key, ``None`` keeping the default,
    paths as strings.  Keys without a default are kept, so that :func:`check` names them; a
    ``user`` that is not a mapping is returned as it is, for :func:`check` to refuse."""
    if not isinstance(user, Mapping):
        return _plain(user)
    out = copy.deepcopy(dict(defaults))
    for key, value in user.items():
        default = out.get(key)
        if value is None and key in out:
            continue
        if isinstance(default, Mapping) and isinstance(value, Mapping):
            out[key] = fill(default, value)
        else:
            out[key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else copy.deepcopy(value)


# ------------------------------------------------------------------------------ code checks


def resolve_recipe(recipe: str | Mapping[str, Any], where: str = "recipe") -> dict[str, Any]:
    """A recipe with its named defaults filled in (the recipe name checked; values are not)."""
    recipe = {"name": recipe} if isinstance(recipe, str) else dict(recipe)
    name = recipe.get("name")
    if name is not None and name not in RECIPES:
        raise ValueError(f"{where}.name = {name!r} is not allowed; use one of {sorted(RECIPES)}")
    return {**RECIPES.get(name or "", {}), **recipe}


def _model_problem(model: str, task: str) -> str | None:
    """Why ``model`` cannot be trained on ``task``; None when it can."""
    from wconv.models import list_models, model_task

    valid = list_models(FAMILY[task])
    if model not in list_models():
        return f"unknown model {model!r}; valid models: {valid}"
    if model_task(model) != FAMILY[task]:
        return f"model {model!r} is not a {task} model; use {valid}"
    return None


def check_study(study: str, section: Mapping[str, Any], where: str | None = None) -> None:
    """The checks of one active study of a params file that the schema cannot make: registered
    models of the study's task, density shapes, the recipe name and the data set (its data
    layer resolves it). ``UserError`` naming the key; the grid itself is checked by
    :func:`wconv.study.check_grid`."""
    from wconv.models import list_models
    from wconv.nn.weighted import density_vectors
    from wconv.study import densities_for, kernel_sizes_for, recipe_variants

    key = where or study  # how messages name the section
    valid = list_models(FAMILY[STUDY_TASK[study]])
    for model in section["models"]:
        if model not in valid:
            raise UserError(f"params: {key}.models has unknown model {model!r}; valid: {valid}")
    sizes = section["kernel_sizes"]
    missing = [m for m in section["models"] if isinstance(sizes, Mapping) and m not in sizes]
    if missing:
        raise UserError(
            f"params: {key}.kernel_sizes (by model) has no entry for {missing}; give every "
            f"model of {key}.models its kernel sizes, e.g. {missing[0]}: [3]"
        )
    for kernel in kernel_sizes_for(section):
        for density in densities_for(section, kernel):
            try:
                density_vectors(density, (kernel, kernel), f"{key}.densities")
            except ValueError as error:
                raise UserError(f"params: {error}") from None
    try:
        resolve_recipe(section["recipe"], f"{key}.recipe")
        _check_study_data(study, section["data"])
    except ValueError as error:
        raise UserError(f"params: {error}") from None
    for name, variant_section in recipe_variants(section):
        # The variant is the study with its own keys on top: the same checks, named for it.
        check_study(study, variant_section, where=f"{key}.recipe_variants.{name}")


def _check_study_data(study: str, data: Mapping[str, Any]) -> None:
    """The data set of a study: one of the study's task (an alias such as ``embedded`` names
    that task's), and its settings as its data layer reads them."""
    from wconv.data.config import resolve

    resolve(data, f"{study}.data", task=STUDY_TASK[study])


def resolve_run_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """One run's config with its defaults filled in (the recipe by name, compute), checked
    against ``$defs/run_config`` and the model registry; ``UserError`` ``run <id>: ...``."""
    cfg = dict(config)
    run_id = str(cfg.get("run_id", "<unnamed>"))
    for key, default in RUN_DEFAULTS.items():
        cfg.setdefault(key, copy.deepcopy(default))
    try:
        if isinstance(cfg.get("recipe"), str | Mapping):
            cfg["recipe"] = resolve_recipe(cfg["recipe"])
        if isinstance(cfg.get("compute", {}), Mapping):
            cfg["compute"] = {**COMPUTE_DEFAULTS, **cfg.get("compute", {})}
        check(cfg, "run_config")
        _check_run(cfg)
    except ValueError as error:
        raise UserError(f"run {run_id}: {error}") from None
    return cfg


def _check_run(cfg: Mapping[str, Any]) -> None:
    from wconv.nn import CONV_KINDS
    from wconv.nn.weighted import density_vectors

    if cfg["task"] not in TASKS:
        raise ValueError(f"task = {cfg['task']!r} is not allowed; use one of {list(TASKS)}")
    problem = _model_problem(cfg["model"], cfg["task"])
    if problem is not None:
        raise ValueError(problem)
    if cfg["conv"] not in CONV_KINDS:
        raise ValueError(f"conv = {cfg['conv']!r} is not allowed; use one of {list(CONV_KINDS)}")
    if cfg["conv"] != "standard":
        kernel = cfg["kernel_size"]
        density_vectors(cfg["density"], (kernel, kernel), "density")
