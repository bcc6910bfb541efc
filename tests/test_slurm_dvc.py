"""DVC on the cluster, job arrays and the queue in `wconv status`, on a real one-node SLURM cluster.

`dvc repro` with `profiles/dvc-params.yaml: profile` pointing at a SLURM profile submits the
study's train jobs as one SLURM job array (`--slurm-array-jobs train`); a second `dvc repro` is a
no-op, and `dvc metrics show` reads the headline numbers. A held job is shown by `wconv status` as
pending, with its SLURM job id.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from project import REPO, edit_params, env, grid, metrics_files, project_copy, run

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# What the one-node test cluster needs on top of the site profile: no accounting database
# (job states from squeue), quick polling; and the train rule as job arrays.
TEST_CLUSTER_SETTINGS = """
slurm-status-command: squeue
slurm-init-seconds-before-status-checks: 2
slurm-array-jobs: train
"""


def two_runs(params: dict) -> None:
    demo = params["presets"]["demo"]
    demo["workflow"] = {"train_job": "run"}  # one SLURM job per run, as the paper grid runs
    demo["resources"]["train"] = {"gpu": 1, "cpus": 1, "runtime": 10, "mem_mb": 2000}
    demo["classification"].update(
        densities=[[0.8]],
        seeds=[0],
        learned={"activate": False},
        recipe_variants={"strong": {"activate": False}},
        recipe={**demo["classification"]["recipe"], "epochs": 2, "patience": 2},
    )
    demo["denoising"]["activate"] = False
    demo["coordgate"] = {"activate": False}


def test_dvc_repro_submits_the_study_to_slurm_as_an_array(slurm_cluster: str, tmp_path: Path):
    root = project_copy(tmp_path / "dvc-slurm")
    edit_params(root, two_runs)
    profile = root / "profiles" / "slurm-test"
    profile.mkdir()
    (profile / "config.yaml").write_text(
        (REPO / "slurm" / "config.yaml").read_text() + TEST_CLUSTER_SETTINGS
    )
    (root / "profiles" / "dvc-params.yaml").write_text("profile: profiles/slurm-test\n")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "the cluster's profile")
    job_env = {**env(), "WCONV_SLURM_PARTITION": slurm_cluster}
    job_env.pop("WCONV_SLURM_ACCOUNT", None)

    first = subprocess.run(
        ["dvc", "repro"], cwd=root, env=job_env, capture_output=True, text=True, timeout=900
    )
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-5000:]
    expected = grid(root)
    assert len(expected) == 2
    assert sorted(metrics_files(root)) == sorted(expected)
    # Both train jobs went in as tasks of one array: their sbatch logs are <array id>_<task>.log.
    array_logs = sorted(p.stem for p in (root / "results/logs/slurm").rglob("*_*.log"))
    assert len(array_logs) == 2, (array_logs, log[-3000:])
    assert len({stem.split("_")[0] for stem in array_logs}) == 1, array_logs
    assert re.search(r"Submitted array job with Snakemake IDs \S+ and SLURM job ID \d+", log), log[
        -3000:
    ]

    # The metrics DVC shows: headline numbers per cell, keyed without any device name.
    shown = json.loads(run(root, "dvc", "metrics", "show", "--json").stdout)
    metrics = next(iter(shown.values()))["data"]["results/metrics.json"]["data"]
    assert metrics["preset"] == "demo" and metrics["runs"]["done"] == 2
    assert {"small_cnn/k3/standard", "small_cnn/k3/weighted"} <= set(metrics["classification"])

    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "the study")
    before = metrics_files(root)
    again = subprocess.run(
        ["dvc", "repro"], cwd=root, env=job_env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "didn't change, skipping" in again.stdout + again.stderr
    assert metrics_files(root) == before


def test_status_shows_a_queued_run_as_pending(slurm_cluster: str, tmp_path: Path):
    root = project_copy(tmp_path / "queue")
    edit_params(root, two_runs)
    run_id = "cls/small_cnn/weighted-d0.8/k3/s0"
    assert run_id in grid(root)
    # A job as the SLURM executor submits it (rule and wildcards in the comment), held so that
    # it stays pending for as long as the test looks.
    job_id = subprocess.run(
        ["sbatch", "--parsable", "--hold", "--partition", slurm_cluster,
         "--comment", "rule_train_wildcards_" + run_id.replace("/", "_"), "--wrap", "sleep 1"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:
        status = run(root, sys.executable, "-m", "wconv.cli", "status").stdout
    finally:
        subprocess.run(["scancel", job_id], check=True)
    line = next(line for line in status.splitlines() if line.startswith(run_id))
    assert " pending " in f" {line} " and f"SLURM job {job_id} pending" in line, status
    assert "1 pending" in status.splitlines()[-1], status
    other = next(line for line in status.splitlines() if line.startswith("cls/small_cnn/standard"))
    assert "not started" in other, status
