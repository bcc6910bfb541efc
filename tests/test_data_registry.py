"""The registry of data sets: every data set under its own name, aliases resolved by the task the
caller passes (never by the keys of the section), and each allowed-value list written once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

import wconv.data as data
from wconv import vocabulary
from wconv.data import config
from wconv.data.config import (
    DatasetKind,
    DatasetSpec,
    aliases,
    dataset_names,
    get_spec,
    list_datasets,
    resolve,
)
from wconv.study import load_params

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "wconv"


def test_the_registered_data_sets():
    assert list_datasets() == ["cifar100", "deblur", "div2k", "embedded-cls", "embedded-den"]
    assert {name: get_spec(name).task for name in list_datasets()} == {
        "cifar100": "classification",
        "deblur": "deblurring",
        "div2k": "denoising",
        "embedded-cls": "classification",
        "embedded-den": "denoising",
    }
    embedded = {"classification": "embedded-cls", "denoising": "embedded-den"}
    assert aliases() == {"embedded": embedded}


@pytest.mark.parametrize("name", list_datasets())
def test_every_data_set_resolves_by_its_name(name, tmp_path):
    spec, cfg = resolve({"dataset": name})
    assert spec.name == name and cfg["dataset"] == name
    assert spec.task in vocabulary.TASKS and isinstance(spec.kind, DatasetKind)
    assert resolve({"dataset": name}, task=spec.task) == (spec, cfg)
    folder = data.prepared_dir({"dataset": name}, tmp_path)
    assert tmp_path in folder.parents and not folder.exists()  # named, not prepared
    assert data.describe({"dataset": name}) == {"dataset": name, "task": spec.task, "settings": cfg}


def test_every_study_task_has_a_data_set():
    for study, task in vocabulary.STUDY_TASK.items():
        assert dataset_names(task), f"no data set for the {task} task of the {study} study"


@pytest.mark.parametrize(
    ("cfg", "task", "message"),
    [
        ({"dataset": "mnist"}, None, "unknown data set 'mnist'; valid data sets: embedded, cifar"),
        (
            {"dataset": "mnist"},
            "classification",
            r"data.dataset = 'mnist' is not allowed; use one of \['embedded', 'cifar100', "
            r"'embedded-cls'\]",
        ),
        (
            {"dataset": "div2k"},
            "classification",
            r"data.dataset = 'div2k' is not allowed; use one of \['embedded', 'cifar100', ",
        ),
        ({"dataset": "deblur"}, "denoising", "data.dataset = 'deblur' is not allowed"),
        ({}, None, "data.dataset is missing or not a string; set it to one of: embedded, cifar100"),
        ({"dataset": "cifar100"}, "segmentation", "unknown task 'segmentation'; use one of"),
    ],
)
def test_unknown_or_misplaced_names_are_one_line_errors(cfg, task, message):
    with pytest.raises(ValueError, match=message) as info:
        resolve(cfg, task=task)
    assert "\n" not in str(info.value)


def test_embedded_resolves_by_the_task_not_by_the_keys():
    # A denoising section without noise or patch keys is still the denoising set...
    spec, cfg = resolve({"dataset": "embedded", "val_fraction": 0.2}, task="denoising")
    assert spec.name == "embedded-den" and cfg["val_fraction"] == 0.2 and "noise" in cfg
    assert resolve({"dataset": "embedded"}, task="classification")[0].name == "embedded-cls"
    # ...and denoising keys do not turn a classification section into one: they are refused.
    with pytest.raises(ValueError, match=r"unknown key data\.noise"):
        resolve({"dataset": "embedded", "noise": {"sigma": 0.1}}, task="classification")
    # Without a task, the alias is an error naming what it stands for, whatever the keys.
    for cfg in ({"dataset": "embedded"}, {"dataset": "embedded", "noise": {"sigma": 0.1}}):
        with pytest.raises(ValueError) as info:
            data.prepared_dir(cfg, "data")
        assert str(info.value) == (
            "data.dataset 'embedded' names one data set per task (classification: embedded-cls, "
            "denoising: embedded-den) and no task was given; name one of them, or pass the task "
            "of the study it belongs to"
        )


def test_each_study_of_the_params_file_resolves_with_its_task():
    expected = {
        "classification": "embedded-cls",
        "denoising": "embedded-den",
        "coordgate": "deblur",
    }
    params = load_params(REPO / "params.yaml", "demo")
    for study, name in expected.items():
        task = vocabulary.STUDY_TASK[study]
        assert resolve(params[study]["data"], task=task)[0].name == name
        assert data.describe(params[study]["data"], task=task)["task"] == task


def test_the_public_functions_dispatch_through_the_registry(monkeypatch, tmp_path):
    calls: list[str] = []

    def prepare(spec, cfg, root):
        calls.append("prepare")
        folder = root / f"{spec.name}-{cfg['size']}"
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text("{}")
        return folder

    kind = DatasetKind(
        settings=lambda spec, user, where: {**spec.defaults, **user},
        prepared_dir=lambda spec, cfg, root: root / f"{spec.name}-{cfg['size']}",
        prepare=prepare,
        load=lambda spec, cfg, root, split: f"{split} of {cfg['size']}",
    )
    spec = DatasetSpec("toy", "denoising", kind, "a toy", defaults={"size": 1}, alias="toyset")
    monkeypatch.setattr(config, "_SPECS", dict(config._SPECS))
    config.register_dataset(spec)
    cfg = {"dataset": "toyset", "size": 3}
    folder = data.prepare(cfg, tmp_path, task="denoising")
    assert folder == tmp_path / "toy-3" == data.prepared_dir(cfg, tmp_path, task="denoising")
    assert data.prepare(cfg, tmp_path, task="denoising") == folder and calls == ["prepare"]
    assert data.load_split(cfg, tmp_path, "val", task="denoising") == "val of 3"
    assert data.describe(cfg, task="denoising")["dataset"] == "toy"
    with pytest.raises(ValueError, match="registered twice"):
        config.register_dataset(spec)
    with pytest.raises(ValueError, match="already names 'toy' for denoising"):
        config.register_dataset(DatasetSpec("toy2", "denoising", kind, "", alias="toyset"))


# ------------------------------------------------------------------------- each list once

# The allowed-value lists of the vocabulary: no other module (or the settings schema) spells one
# out; they import it.  wconv.nn is torch-only and may not import the vocabulary: its CONV_KINDS
# is tied to vocabulary.CONVS by test_vocabulary.
VOCABULARY_LISTS = {
    "STUDIES": vocabulary.STUDIES,
    "PREFIXES": vocabulary.PREFIXES,
    "TASKS": vocabulary.TASKS,
    "PAPER_TASKS": vocabulary.PAPER_TASKS,
    "SPLITS": vocabulary.SPLITS,
    "PADDING_MODES": vocabulary.PADDING_MODES,
    "TRAIN_JOBS": vocabulary.TRAIN_JOBS,
    "CONVS": vocabulary.CONVS,
    "FINISHED_STATUSES": vocabulary.FINISHED_STATUSES,
    "RUN_STATES": vocabulary.RUN_STATES,
    **{f"METRICS[{task!r}]": tuple(metrics) for task, metrics in vocabulary.METRICS.items()},
}
ALLOWED = {SRC / "vocabulary.py", SRC / "nn" / "weighted.py"}


def _string_lists(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 2:
            values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if len(values) == len(node.elts) and all(isinstance(v, str) for v in values):
                yield node.lineno, frozenset(values)


def _schema_enums(node, path="schema"):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "enum" and isinstance(value, list):
                yield path, frozenset(v for v in value if isinstance(v, str))
            else:
                yield from _schema_enums(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _schema_enums(value, f"{path}[{i}]")


def test_no_vocabulary_list_is_spelled_out_elsewhere():
    lists = {frozenset(values): name for name, values in VOCABULARY_LISTS.items()}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path in ALLOWED:
            continue
        for line, values in _string_lists(ast.parse(path.read_text(), str(path))):
            if values in lists:
                found.append(f"{path.relative_to(REPO)}:{line} spells vocabulary.{lists[values]}")
    schema = yaml.safe_load((SRC / "params.schema.yaml").read_text())
    for where, values in _schema_enums(schema):
        if values in lists:
            found.append(f"{where} spells vocabulary.{lists[values]}")
    assert found == [], "import these lists from wconv.vocabulary instead: " + "; ".join(found)


def test_the_scan_finds_a_spelled_out_list():
    tree = ast.parse('SPLITS = ("train", "val", "test")\nOTHER = ["a", 1]')
    assert list(_string_lists(tree)) == [(1, frozenset(vocabulary.SPLITS))]
