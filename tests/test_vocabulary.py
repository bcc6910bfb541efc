"""The vocabulary: one definition of the studies, tasks and metrics, and the run id type."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wconv import settings, vocabulary
from wconv.study import Cell, load_params, run_ids
from wconv.vocabulary import RUN_ID_PATTERN, RUN_ID_RE, STUDY_PREFIX_PATTERN, RunId

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=["demo", "paper"])
def grid(request) -> list[str]:
    return run_ids(load_params(REPO / "params.yaml", request.param))


def test_every_run_id_of_the_grid_round_trips(grid):
    assert grid
    for text in grid:
        run_id = RunId.parse(text)
        assert str(run_id) == text and f"{run_id}" == text and f"{run_id:>80}".strip() == text
        assert RunId.parse(str(run_id)) == run_id
        rebuilt = RunId(
            run_id.prefix, run_id.model, run_id.variant, run_id.kernel_size, run_id.seed
        )
        assert rebuilt == run_id and hash(rebuilt) == hash(run_id)
        assert run_id.study in vocabulary.STUDIES
        assert run_id.task == vocabulary.STUDY_TASK[run_id.study]
        assert run_id.conv in vocabulary.CONVS
        assert run_id.cell == text.rsplit("/", 1)[0]


def test_the_pattern_matches_exactly_the_ids_the_grid_makes(grid):
    as_wildcard = re.compile(rf"runs/(?P<run>{RUN_ID_PATTERN})/metrics\.json")
    for text in grid:
        assert re.fullmatch(RUN_ID_PATTERN, text), text
        match = as_wildcard.fullmatch(f"runs/{text}/metrics.json")
        assert match is not None and match["run"] == text
        # Nothing more, nothing less: no prefix or suffix of an id is an id.
        assert not re.fullmatch(RUN_ID_PATTERN, text + "/extra")
        assert not re.fullmatch(RUN_ID_PATTERN, text.rsplit("/", 1)[0])
    assert re.compile(RUN_ID_PATTERN).groups == 0  # usable inside a larger pattern
    assert re.fullmatch(STUDY_PREFIX_PATTERN, "cg") and not re.fullmatch(STUDY_PREFIX_PATTERN, "c")


def test_run_id_fields_and_properties():
    run_id = RunId.parse("den/nafnet/weighted-d0.1_0.9/k5/s2")
    assert (run_id.prefix, run_id.model, run_id.variant, run_id.kernel_size, run_id.seed) == (
        "den",
        "nafnet",
        "weighted-d0.1_0.9",
        5,
        2,
    )
    assert (run_id.study, run_id.task, run_id.conv) == ("denoising", "denoising", "weighted")
    assert run_id.density == (0.1, 0.9) and run_id.density_label == "0.1_0.9"
    assert RunId.parse("cls/m/standard/k3/s0").density is None
    assert RunId.parse(" /cg/unet-L3/learned-d1/k3/s4/ ").model == "unet-L3"
    assert RunId.of("coordgate", "unet-L2", "weighted", "0.8", 3, 1) == RunId.parse(
        "cg/unet-L2/weighted-d0.8/k3/s1"
    )


def test_cells_write_ids_that_parse_whatever_the_density():
    for density in ([1e-05], [0.5, 1.5e20], 2):
        cell = Cell("denoising", "dncnn", "weighted", density, 5, 0)
        assert str(RunId.parse(cell.run_id)) == cell.run_id


@pytest.mark.parametrize(
    "bad",
    [
        "cls/m/standard/k3",  # no seed
        "cls/m/standard/k3/s0/x",
        "xyz/m/standard/k3/s0",  # not a study
        "cls/m/fancy/k3/s0",  # not a conv kind
        "cls/m/weighted-d0.1__/k3/s0",
        "cls/m/weighted-d/k3/s0",
        "cls/m/standard/3/s0",
        "cls/m/standard/k3/seed0",
        "cls//standard/k3/s0",
        "",
    ],
)
def test_bad_ids_are_refused_naming_the_form(bad):
    with pytest.raises(ValueError, match=r"is not a run id; expected <study>/<model>/") as error:
        RunId.parse(bad)
    message = str(error.value)
    assert "cls, den, cg" in message and "\n" not in message
    assert not RUN_ID_RE.match(bad)


def test_a_run_id_cannot_be_made_malformed():
    with pytest.raises(ValueError, match="is not a run id"):
        RunId("cls", "m/n", "standard", 3, 0)
    with pytest.raises(ValueError, match="is not a run id"):
        RunId("cls", "m", "standard", -3, 0)
    with pytest.raises(ValueError, match="non-finite"):
        RunId.parse("cls/m/weighted-d1e+999/k3/s0")


def test_the_words_agree_with_each_other_and_with_the_schema():
    assert set(vocabulary.STUDY_PREFIX) == set(vocabulary.STUDIES) == set(vocabulary.STUDY_TASK)
    assert set(vocabulary.STUDY_TASK.values()) == set(vocabulary.TASKS)
    assert set(vocabulary.METRICS) == set(vocabulary.TASKS) == set(vocabulary.FAMILY)
    for task, metric in vocabulary.SELECT_METRIC.items():
        assert vocabulary.METRICS[task][metric] is True  # higher is better
    assert set(vocabulary.PAPER_TASKS) <= set(vocabulary.TASKS)
    # The schema's study sections are the studies (property names cannot come from Python).
    sections = settings.schema()["properties"]
    assert {key for key in sections if key in vocabulary.STUDIES} == set(vocabulary.STUDIES)
    assert all(sections[study]["$ref"] == "#/$defs/study" for study in vocabulary.STUDIES)


def test_the_nn_conv_kinds_are_the_vocabulary_s():
    from wconv.nn import CONV_KINDS

    assert tuple(CONV_KINDS) == vocabulary.CONVS


def test_the_vocabulary_imports_only_the_standard_library():
    code = (
        "import json, sys; before = set(sys.modules); import wconv.vocabulary; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    loaded = {name.split(".")[0] for name in json.loads(out)}
    assert "wconv" in loaded
    assert loaded - set(sys.stdlib_module_names) - {"wconv"} == set()


def test_the_schema_takes_its_split_and_padding_enums_from_the_vocabulary():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw.pop("presets")  # merged away before the schema sees a params file
    settings.check(raw)  # the shipped params pass
    padding = raw["coordgate"]["experiments"]["padding"]
    for mode in vocabulary.PADDING_MODES:
        padding["padding_mode"] = mode
        settings.check(raw)
    padding["padding_mode"] = "mirror"
    with pytest.raises(ValueError, match="padding_mode") as err:
        settings.check(raw)
    assert all(mode in str(err.value) for mode in vocabulary.PADDING_MODES)
    for split in vocabulary.SPLITS:
        settings.check(split, "split")
    with pytest.raises(ValueError):
        settings.check("validation", "split")
