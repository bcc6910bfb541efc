"""The report's cost-estimate section: a table from the rehearsals of the report's preset
(``<out>/rehearsals/<preset>/<run-id>/rehearsal.json``), shown only when there are some."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from wconv.data import PREPARE_COST, prepare, prepare_cost, prepared_dir
from wconv.report import build_report
from wconv.report.estimate import cost_estimate, cost_totals
from wconv.report.published import load_published
from wconv.report.tables import _published_epoch_seconds
from wconv.study import load_params, run_config
from wconv.train.rehearsal import rehearse_run

REPO = Path(__file__).resolve().parents[1]
RUNS = ("cls/small_cnn/standard/k3/s0", "den/dncnn/standard/k3/s0")
STEPS = 2


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder whose ``rehearsals/demo/`` holds two real rehearsals (CPU, 2 steps)."""
    results = tmp_path_factory.mktemp("results")
    data = tmp_path_factory.mktemp("data")
    params = load_params(REPO / "params.yaml", "demo")
    for run_id in RUNS:
        config = run_config(params, run_id)
        config["data_root"] = str(data)
        config["compute"] = {**config["compute"], "device": "cpu"}
        prepare(config["data"], data, task=config["task"])
        rehearse_run(config, results / "rehearsals" / "demo" / run_id, steps=STEPS)
    (results / "runs").mkdir()
    return results


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start : page.index("</section>", start)]


def test_report_shows_the_cost_estimate_of_its_preset(rehearsed: Path) -> None:
    report = build_report(rehearsed / "runs", rehearsed, params={"preset": "demo"})
    table = report.tables["cost_estimate"]
    expected = cost_estimate(rehearsed / "rehearsals" / "demo")
    totals = cost_totals(expected)
    assert list(table.data["run_id"]) == sorted(RUNS)
    assert len(table.rows) == len(RUNS) + 1  # one row per rehearsed cell, then the totals

    folder = rehearsed / "tables"
    csv = pd.read_csv(folder / "cost_estimate.csv")
    assert list(csv["run_id"]) == sorted(RUNS)
    assert csv["run_hours"].sum() == pytest.approx(totals["run_hours"])
    assert (folder / "cost_estimate.md").is_file() and (folder / "cost_estimate.html").is_file()

    summary = json.loads(report.summary_path.read_text())["cost_estimate"]
    assert summary["projected"] is True and summary["runs"] == len(RUNS)
    assert summary["run_hours"] == pytest.approx(totals["run_hours"])
    assert summary["gpu_hours"] == 0 and summary["runs_not_on_gpu"] == len(RUNS)  # CPU
    assert summary["checkpoint_gib"] == pytest.approx(totals["checkpoint_gib"])
    assert summary["max_peak_rss_gib"] == pytest.approx(totals["max_peak_rss_gib"])
    assert summary["max_peak_device_gib"] is None

    page = report.index.read_text()
    assert '<a href="#cost">Cost estimate</a>' in page
    section = _section(page, "cost")
    assert "Cost estimate (from a rehearsal)" in section
    assert section.count("<tr") == 1 + len(RUNS) + 1  # the header, the cells, the totals
    device = expected["device"].iloc[0]
    assert f"projected from {STEPS} timed steps on {device}" in section
    assert "not measured training" in section
    assert f"total ({len(RUNS)} runs)" in section
    assert f"{totals['run_hours']:.3f} ({totals['gpu_hours']:.3f} GPU-hours)" in section
    assert f"max {totals['max_peak_rss_gib']:.2f}" in section
    # The page keeps its other sections, in order, with the estimate after the grid status.
    assert page.index('<section id="status">') < page.index('<section id="cost">')


def test_the_estimate_carries_what_preparing_the_data_cost(rehearsed: Path) -> None:
    """Each rehearsal records its data's prepare-cost.json; the estimate shows it per cell and
    the largest in the totals (a data set is prepared once for all its cells)."""
    for run_id in RUNS:
        record = json.loads(
            (rehearsed / "rehearsals" / "demo" / run_id / "rehearsal.json").read_text()
        )
        cost = record["prepare"]
        assert cost["seconds"] > 0 and cost["peak_rss_kib"] > 0 and cost["prepared_bytes"] > 0
    frame = cost_estimate(rehearsed / "rehearsals" / "demo")
    assert (frame["prepare_minutes"] > 0).all() and (frame["prepared_gib"] > 0).all()
    totals = cost_totals(frame)
    assert totals["max_prepare_minutes"] == pytest.approx(frame["prepare_minutes"].max())
    # The 50 % line halves only the runs that may stop early (the upper bounds).
    pairs = zip(frame["run_hours"], frame["upper_bound"], strict=True)
    halved = [hours * (0.5 if upper else 1.0) for hours, upper in pairs]
    assert totals["run_hours_half"] == pytest.approx(sum(halved))
    assert totals["run_hours_half"] <= totals["run_hours"]
    report = build_report(rehearsed / "runs", rehearsed, params={"preset": "demo"})
    header = [name for _, name in report.tables["cost_estimate"].columns]
    assert "data prepare min" in header and "prepared GiB" in header
    published = load_published()
    assert f"{published.label} s/epoch ({published.device})" in header


def test_prepare_records_its_cost_once(tmp_path: Path) -> None:
    data = load_params(REPO / "params.yaml", "demo")["classification"]["data"]
    folder = prepare(data, tmp_path, task="classification")
    path = folder / PREPARE_COST
    cost = prepare_cost(data, tmp_path, task="classification")
    assert cost is not None and path.is_file() and cost["seconds"] > 0
    tree = sum(p.stat().st_size for p in folder.parent.rglob("*") if p.is_file() and p != path)
    assert cost["prepared_bytes"] == tree  # written after measuring the tree
    before = path.stat().st_mtime_ns
    task = "classification"
    assert prepare(data, tmp_path, task=task) == folder == prepared_dir(data, tmp_path, task=task)
    assert path.stat().st_mtime_ns == before  # a prepared folder is returned untouched


@pytest.mark.parametrize("conv", ["standard", "weighted"])
def test_cost_rows_sit_beside_the_papers_epoch_times(conv: str) -> None:
    published = load_published()
    entry = published.find("classification", "resnet56", 3)
    assert entry is not None
    variant = conv if conv == "standard" else "weighted-d0.8"
    row = {"run_id": f"cls/resnet56-strong/{variant}/k3/s0", "task": "classification",
           "model": "resnet56"}  # fmt: skip
    expected = {"standard": entry.standard, "weighted": entry.weighted}[conv]["seconds_per_epoch"]
    assert _published_epoch_seconds(row, published) == expected
    learned = {**row, "run_id": "cls/resnet56/learned-d1/k3/s0"}
    assert math.isnan(_published_epoch_seconds(learned, published))  # the paper has no timing


def test_no_cost_section_without_a_rehearsal_of_the_preset(rehearsed: Path) -> None:
    for params in (None, {"preset": "paper"}):  # no preset known / another preset's folder
        report = build_report(rehearsed / "runs", rehearsed, params=params)
        page = report.index.read_text()
        assert "cost_estimate" not in report.tables and 'id="cost"' not in page
        assert "#cost" not in page and "cost_estimate" not in report.summary
        assert not (rehearsed / "tables" / "cost_estimate.csv").exists()  # stale files go


def test_an_unreadable_rehearsal_is_a_warning(tmp_path: Path) -> None:
    broken = tmp_path / "rehearsals" / "demo" / "cls/m/standard/k3/s0"
    broken.mkdir(parents=True)
    (broken / "rehearsal.json").write_text("{}")
    (tmp_path / "runs").mkdir()
    report = build_report(tmp_path / "runs", tmp_path, params={"preset": "demo"})
    assert "cost_estimate" not in report.tables
    assert any("cost estimate left out" in w for w in report.warnings)
    assert 'id="cost"' not in report.index.read_text()
