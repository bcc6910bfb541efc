"""`wconv status` on a folder with done, failed, diverged, running, interrupted and missing runs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _metrics(folder: Path, run_id: str, status: str) -> None:
    folder.mkdir(parents=True)
    (folder / "history.csv").write_text(
        "epoch,train_loss,val_loss,val_metric,lr,epoch_seconds,density\n"
        "1,2.0,1.9,0.41,0.1,1.0,\n2,1.5,1.4,0.52,0.05,1.0,\n"
    )
    model, conv, kernel, seed = run_id.split("/")[1:]
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "study": "cls",
                "task": "classification",
                "model": model,
                "conv": conv.split("-")[0],
                "density": None if conv == "standard" else [0.8],
                "kernel_size": int(kernel[1:]),
                "seed": int(seed[1:]),
                "status": status,
                "best_epoch": 2,
                "epochs_run": 2,
                "max_epochs": 4,
                "params": 10,
                "seconds_per_epoch": 1.0,
                "device": "cpu",
                "device_name": "cpu",
                "val": {"loss": 1.4, "accuracy": 0.52, "f1_macro": 0.5},
                "test": {"loss": 1.4, "accuracy": 0.5, "f1_macro": 0.5},
                "identity": None,
            }
        )
    )


def _lock(folder: Path, pid: int) -> None:
    folder.mkdir(parents=True)
    (folder / "history.csv").write_text(
        "epoch,train_loss,val_loss,val_metric,lr,epoch_seconds,density\n1,2.0,1.9,0.33,0.1,1.0,\n"
    )
    (folder / ".lock").write_text(
        json.dumps(
            {"pid": pid, "host": socket.gethostname(), "slurm_job_id": None, "started": "now"}
        )
    )


def test_status_shows_each_state(tmp_path):
    runs = tmp_path / "runs"
    _metrics(runs / "cls/small_cnn/standard/k3/s0", "cls/small_cnn/standard/k3/s0", "ok")
    _metrics(
        runs / "cls/small_cnn/weighted-d0.8/k3/s0", "cls/small_cnn/weighted-d0.8/k3/s0", "diverged"
    )
    _lock(runs / "cls/small_cnn/weighted-d1.2/k3/s0", os.getpid())  # alive: this test
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _lock(runs / "cls/small_cnn/standard/k3/s1", dead.pid)  # a killed job's lock
    (runs / "cls/small_cnn/weighted-d0.8/k3/s1/checkpoints").mkdir(parents=True)  # stopped
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wconv.cli",
            "status",
            "--params",
            str(REPO / "params.yaml"),
            "--preset",
            "demo",
            "--runs",
            str(runs),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    states = {}
    for line in result.stdout.splitlines()[1:-1]:
        run_id, state = line.split()[:2]
        states[run_id] = state if state != "not" else "not started"
    assert states["cls/small_cnn/standard/k3/s0"] == "done"
    assert states["cls/small_cnn/weighted-d0.8/k3/s0"] == "diverged"
    assert states["cls/small_cnn/weighted-d1.2/k3/s0"] == "running"
    assert states["cls/small_cnn/standard/k3/s1"] == "failed"
    assert states["cls/small_cnn/weighted-d0.8/k3/s1"] == "interrupted"
    # Every other cell of the demo grid (whose exact ids its preset decides) has not started.
    assert list(states.values()).count("not started") == len(states) - 5
    assert "den/dncnn/standard/k3/s0" in states
    running = next(line for line in result.stdout.splitlines() if "weighted-d1.2/k3/s0" in line)
    assert " 1 " in running and "0.33" in running  # epochs done and best metric so far
    summary = result.stdout.splitlines()[-1]
    assert "1 done, 1 diverged, 1 running, 0 pending, 1 failed, 1 interrupted" in summary
