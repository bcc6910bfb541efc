"""The study through `snakemake --profile slurm` on a real one-node SLURM cluster.

A tiny study (embedded data, 2 models × 2 conv kinds) runs as one SLURM job per step. While one
training job runs, it is cancelled with `scancel`: the run checkpoints on SIGTERM, the job fails,
Snakemake resubmits it (the profile's retries, runtime scaled by the attempt) and the run resumes
from its checkpoint. The study completes, every job went through sbatch, and the cancelled run's
history shows two sessions and no epoch trained twice.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from project import edit_params, env, grid, metrics_files, project_copy

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def tiny_study(params: dict) -> None:
    params["preset"] = "slurm_test"
    demo = params["presets"]["demo"]
    params["presets"]["slurm_test"] = {
        **demo,
        # One SLURM job per run, as the paper grid runs (the demo packs a cell's seeds per job).
        "workflow": {"train_job": "run"},
        "resources": {
            **demo["resources"],
            "train": {"gpu": 1, "cpus": 1, "runtime": 10, "mem_mb": 2000},
        },
        "classification": {
            **demo["classification"],
            "densities": [[0.8]],
            "seeds": [0],
            "learned": {"activate": False},
            "recipe_variants": {"strong": {"activate": False}},
            # Long enough to be cancelled mid-run, short enough for CI.
            "recipe": {**demo["classification"]["recipe"], "epochs": 12, "patience": 12},
        },
        "coordgate": {**demo["coordgate"], "activate": False},
        "denoising": {
            **demo["denoising"],
            "densities": {3: [[0.8]]},
            "models": ["dncnn"],
            "kernel_sizes": [3],
            "seeds": [0],
            "recipe": {**demo["denoising"]["recipe"], "epochs": 2},
        },
    }


def _running_train_job(runs: Path) -> tuple[str, str] | None:
    """(run id, SLURM job id) of a classification run that has trained an epoch and is running."""
    for lock in runs.glob("cls/**/.lock"):
        folder = lock.parent
        history = folder / "history.csv"
        if history.exists() and len(history.read_text().strip().splitlines()) >= 2:
            job = json.loads(lock.read_text()).get("slurm_job_id")
            if job:
                return str(folder.relative_to(runs)), job
    return None


def test_study_through_slurm_survives_a_cancelled_job(slurm_cluster: str, tmp_path: Path):
    root = project_copy(tmp_path / "study")
    edit_params(root, tiny_study)
    expected = grid(root)
    assert len(expected) == 4  # small_cnn and dncnn, each standard and weighted

    command = [
        sys.executable, "-m", "snakemake", "--profile", "slurm",
        # Test-cluster overrides (no accounting database; poll quickly).
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
    ]  # fmt: skip
    job_env = {**env(), "WCONV_SLURM_PARTITION": slurm_cluster}
    job_env.pop("WCONV_SLURM_ACCOUNT", None)
    log_path = tmp_path / "snakemake.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command, cwd=root, env=job_env, stdout=log_file, stderr=subprocess.STDOUT
        )
        runs = root / "results" / "runs" / "demo"
        deadline = time.monotonic() + 600
        target = None
        while target is None:
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "no training job reached its first epoch"
            time.sleep(0.2)
            target = _running_train_job(runs)
        cancelled_run, job_id = target
        subprocess.run(["scancel", job_id], check=True)
        process.wait(timeout=900)
    log = log_path.read_text()
    assert process.returncode == 0, log[-5000:]

    # The retry of the cancelled run asked SLURM for twice the time and memory (attempt 2), and
    # every train job carries its run id in the job comment (squeue -o %k, `wconv status`).
    flat = cancelled_run.replace("/", "_")
    run_logs = {p.stem for p in (root / "results/logs/slurm/rule_train").rglob(f"{flat}/*.log")}
    retries = run_logs - {job_id}
    assert len(retries) == 1, (run_logs, job_id)
    retry = subprocess.run(
        ["scontrol", "show", "job", retries.pop()], capture_output=True, text=True, check=True
    ).stdout
    assert "TimeLimit=00:20:00" in retry and re.search(r"MinMemoryNode=4000M\b", retry), retry
    assert f"Comment=rule_train_wildcards_{flat}" in retry, retry

    # Every job went through sbatch; the cancelled one was resubmitted as a new SLURM job.
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    # Trains and the retry; prepare and report are local rules (no job, on the login node).
    assert len(submitted) == len(expected) + 1
    assert job_id in submitted
    slurm_logs = list((root / "results" / "logs" / "slurm").rglob("*.log"))
    assert {p.stem for p in slurm_logs} >= set(submitted) - {job_id}

    # Complete results; the cancelled run resumed instead of starting over.
    assert sorted(metrics_files(root)) == sorted(expected)
    assert (root / "results" / "index.html").exists()
    rows = (runs / cancelled_run / "history.csv").read_text().strip().splitlines()
    header, rows = rows[0].split(","), [row.split(",") for row in rows[1:]]
    epochs = [int(row[header.index("epoch")]) for row in rows]
    sessions = [int(row[header.index("session")]) for row in rows]
    assert epochs == list(range(1, 13)), epochs
    assert sessions[0] == 1 and sessions[-1] == 2 and sessions == sorted(sessions), sessions
    train_log = (root / "results/logs/train" / f"{cancelled_run}.log").read_text()
    assert "resuming at epoch" in train_log
    metrics = json.loads((runs / cancelled_run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs_run"] == 12
    assert os.environ.get("SLURM_JOB_ID") is None  # the test itself ran outside SLURM
