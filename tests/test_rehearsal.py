"""Rehearsals (``wconv rehearse``): a few real training steps of a grid cell, measured, and the
grid's cost estimate from them (``wconv estimate``)."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wconv.cli import main
from wconv.data import load_split, prepare
from wconv.report.estimate import cost_estimate, cost_totals
from wconv.study import load_params, run_config
from wconv.train.rehearsal import rehearse_run

REPO = Path(__file__).resolve().parents[1]
RUNS = ("cls/small_cnn/standard/k3/s0", "den/dncnn/standard/k3/s0")
FIELDS = {
    "schema", "run_id", "device", "device_type", "device_name", "params", "train_samples",
    "batch_size", "last_batch", "steps_per_epoch", "steps_timed", "step_seconds",
    "seconds_per_step_median", "seconds_per_step_mean", "val_seconds", "val_scope", "max_epochs",
    "projected_epoch_seconds", "projected_run_seconds", "projection", "checkpoint_bytes",
    "best_checkpoint_bytes", "resume_ok", "peak_rss_kib", "peak_device_bytes",
}  # fmt: skip


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, dict]:
    """The demo preset's run configs of ``RUNS``, on the CPU, their data prepared in a temp root."""
    root = tmp_path_factory.mktemp("data")
    params = load_params(REPO / "params.yaml", "demo")
    found = {}
    for run_id in RUNS:
        config = run_config(params, run_id)
        config["data_root"] = str(root)
        config["compute"] = {**config["compute"], "device": "cpu"}
        prepare(config["data"], root, task=config["task"])
        found[run_id] = config
    return found


@pytest.fixture(scope="module")
def rehearsals(configs, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rehearsals")
    for run_id, config in configs.items():
        rehearse_run(config, root / run_id, steps=3)
    return root


@pytest.mark.parametrize("run_id", RUNS)
def test_rehearsal_measures_the_run(rehearsals, configs, run_id):
    out = rehearsals / run_id
    result = json.loads((out / "rehearsal.json").read_text())
    assert not FIELDS - set(result)
    config = configs[run_id]
    train = load_split(config["data"], Path(config["data_root"]), "train", task=config["task"])
    images = train.images if hasattr(train, "images") else train.degraded
    size, batch = len(images), config["recipe"]["batch_size"]
    assert result["run_id"] == run_id and result["device_type"] == "cpu"
    assert result["train_samples"] == size and result["batch_size"] == batch
    # The engine's loaders keep a short last batch: ceil(N / B) steps an epoch.
    assert result["last_batch"] == "keep"
    assert result["steps_per_epoch"] == math.ceil(size / batch)
    assert result["steps_timed"] == 3 and len(result["step_seconds"]) == 3
    assert result["seconds_per_step_median"] > 0 and result["seconds_per_step_mean"] > 0
    assert result["val_seconds"] > 0 and result["val_scope"] == "full"
    assert result["max_epochs"] == config["recipe"]["epochs"]
    epoch = result["steps_per_epoch"] * result["seconds_per_step_median"] + result["val_seconds"]
    assert result["projected_epoch_seconds"] == pytest.approx(epoch)
    assert result["projected_run_seconds"] == pytest.approx(result["max_epochs"] * epoch)
    # The demo's patience equals its epochs: early stopping cannot end it sooner.
    assert result["projection"] == "full"
    assert result["checkpoint_bytes"] > result["best_checkpoint_bytes"] > 0
    assert result["resume_ok"] is True and result["resume_problem"] is None
    assert result["params"] > 0 and result["peak_rss_kib"] > 0
    assert result["peak_device_bytes"] is None  # CPU
    # Never a finished (or resumable) run: no metrics.json, no checkpoint left behind.
    assert sorted(p.name for p in out.rglob("*")) == ["rehearsal.json"]


def test_rehearsal_bounds_a_large_validation_set(configs, tmp_path):
    config = configs[RUNS[0]]
    result = rehearse_run(config, tmp_path, steps=1, max_val_batches=2)
    assert result["val_scope"] == "slice (scaled)" and result["val_batches_measured"] == 2
    assert result["val_seconds"] == pytest.approx(
        result["val_measured_seconds"] * result["val_batches"] / 2
    )


def test_rehearse_cli(configs, tmp_path, capsys):
    config_file = tmp_path / "job-config.yaml"
    config_file.write_text(yaml.safe_dump(configs[RUNS[0]]))
    out = tmp_path / "rehearsal"
    assert main(["rehearse", "--config", str(config_file), "--out", str(out), "--steps", "2"]) == 0
    assert "s/step" in capsys.readouterr().out
    assert json.loads((out / "rehearsal.json").read_text())["steps_timed"] == 2

    params = str(REPO / "params.yaml")
    unknown = ["rehearse", "--run-id", "cls/nope/standard/k3/s0", "--params", params]
    assert main([*unknown, "--preset", "demo", "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: run 'cls/nope/standard/k3/s0' is not in the grid")
    assert error.count("\n") == 1
    assert main(["rehearse", "--config", str(config_file), "--out", str(out), "--steps", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["rehearse", "--config", str(config_file)]) == 2  # --out missing
    assert "--out is required" in capsys.readouterr().err
    (out / "metrics.json").write_text("{}")  # a real run folder is never rehearsed into
    assert main(["rehearse", "--config", str(config_file), "--out", str(out)]) == 2
    assert "holds a training run" in capsys.readouterr().err


def test_estimate_totals_are_the_sum_of_the_rows(rehearsals, tmp_path, capsys):
    out = tmp_path / "cost_estimate.csv"
    assert main(["estimate", "--rehearsals", str(rehearsals), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["run_id"] for row in rows] == sorted(RUNS)
    table = cost_estimate(rehearsals)
    totals = cost_totals(table)
    hours = sum(float(row["run_hours"]) for row in rows)
    assert totals["runs"] == 2 and f"{totals['runs']} runs" in printed
    assert totals["run_hours"] == pytest.approx(hours)
    assert totals["gpu_hours"] == 0 and totals["runs_not_on_gpu"] == 2
    disk = sum(float(row["run_disk_mib"]) for row in rows) / 1024
    assert totals["checkpoint_gib"] == pytest.approx(disk)
    assert totals["max_peak_rss_gib"] == max(float(row["peak_rss_gib"]) for row in rows)
    assert totals["max_peak_device_gib"] is None
    for row in rows:
        expected = int(row["max_epochs"]) * float(row["epoch_seconds"]) / 3600
        assert float(row["run_hours"]) == pytest.approx(expected)

    assert main(["estimate", "--rehearsals", str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["estimate", "--rehearsals", str(empty), "--out", str(out)]) == 2
    assert "no rehearsal.json" in capsys.readouterr().err


def test_estimate_does_not_import_torch():
    code = "import sys, wconv.report.estimate, wconv.cli.estimate; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
