"""The study workflow end to end with real Snakemake and real DVC, on embedded data.

One DVC-managed copy of the project runs the demo study (`dvc repro` → Snakemake → every grid
cell → report), then proves incremental reruns: one added density trains only its new runs, an
unchanged repro runs nothing, and push/pull to a local remote restores the run folders. A second
copy is killed mid-run and restarted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from project import (
    BIN,
    edit_params,
    env,
    grid,
    metrics_files,
    project_copy,
    run,
    workflow_grid,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = project_copy(tmp_path_factory.mktemp("study"))
    edit_params(root, workflow_grid)
    run(root, "git", "commit", "-qam", "the workflow tests' grid")
    started = time.monotonic()
    run(root, "dvc", "repro")
    elapsed = time.monotonic() - started
    (root / "demo_seconds").write_text(f"{elapsed:.1f}")
    return root


def test_demo_study_produces_every_run_and_the_results_folder(study):
    finished = metrics_files(study)
    assert sorted(finished) == sorted(grid(study))
    for run_id in finished:
        metrics = json.loads((study / "results/runs/demo" / run_id / "metrics.json").read_text())
        assert metrics["run_id"] == run_id and metrics["status"] in ("ok", "stopped_early")
    for name in ("index.html", "summary.json", "tables", "figures"):
        assert (study / "results" / name).exists(), name
    page = (study / "results/index.html").read_text()
    assert "cls/small_cnn" in page and "CoordGate" in page
    # The CoordGate section: 1D task, padding signal, PSNR vs parameters, deblurring examples.
    for stem in ("cg1d_psnr_vs_time", "cg1d_matrices", "cg_padding_signal", "cg_psnr_vs_params",
                 "cg_deblur_examples"):  # fmt: skip
        assert (study / "results/figures" / f"{stem}.png").exists(), stem
        assert f"figures/{stem}.png" in page, stem
    # The demo trains a grid cell per job (workflow.train_job: cell): one log per cell, with a
    # header for each of its runs.
    logs = list((study / "results/logs/train").glob("**/*.log"))
    assert len(logs) == len({run_id.rsplit("/", 1)[0] for run_id in finished})
    headers = [line for log in logs for line in log.read_text().splitlines() if line[:3] == "==="]
    assert sorted(h.split()[3].rstrip(":") for h in headers) == sorted(finished)
    # A budget for this reduced grid on 2 cores (the whole workflow, data to report); the full
    # demo's wall time is measured by `make demo` and stated in the README.
    assert float((study / "demo_seconds").read_text()) < 600


def test_snakemake_report_builds(study):
    run(study, "snakemake", "--report", "snakemake-report.html")
    page = (study / "snakemake-report.html").read_text()
    assert "index.html" in page and "train" in page


def test_changed_settings_rerun_exactly_the_affected_jobs(study, tmp_path):
    def slower_denoising(params: dict) -> None:
        params["presets"]["demo"]["denoising"]["recipe"]["lr"] = 0.001

    edit_params(study, slower_denoising)
    try:
        dry = run(study, "snakemake", "-n", "--quiet", "rules").stdout
    finally:
        run(study, "git", "checkout", "params.yaml")
    counts = dict(line.split() for line in dry.splitlines() if len(line.split()) == 2)
    # The demo trains a grid cell per job (rules train_s<seeds>): every denoising cell, no other.
    den_cells = {r.rsplit("/", 1)[0] for r in grid(study) if r.startswith("den/")}
    train_jobs = {rule: int(n) for rule, n in counts.items() if rule.startswith("train")}
    assert sum(train_jobs.values()) == len(den_cells) and "prepare" not in counts, counts


def test_dvc_reruns_only_new_cells_then_nothing(study):
    run(study, "git", "add", "-A")
    run(study, "git", "commit", "-qm", "demo study")
    before = metrics_files(study)

    def add_density(params: dict) -> None:
        params["presets"]["demo"]["classification"]["densities"].append([1.1])

    edit_params(study, add_density)
    result = run(study, "dvc", "repro")
    after = metrics_files(study)
    new = sorted(set(after) - set(before))
    assert new == ["cls/small_cnn/weighted-d1.1/k3/s0", "cls/small_cnn/weighted-d1.1/k3/s1"]
    assert all(after[r] == before[r] for r in before), "a finished run was retrained"
    # One job for the new cell, which trains both its seeds.
    trained = re.findall(r"rule train\w*:", result.stdout + result.stderr)
    assert len(trained) == 1, trained

    run(study, "git", "add", "-A")
    run(study, "git", "commit", "-qm", "one more density")
    # Python's bytecode cache in a dependency (what running the code writes) is no change.
    (study / "src/wconv/__pycache__").mkdir(exist_ok=True)
    (study / "src/wconv/__pycache__/study.cpython-311.pyc").write_bytes(b"\0")
    again = run(study, "dvc", "repro")
    assert "didn't change, skipping" in again.stdout + again.stderr
    assert "rule train" not in again.stdout + again.stderr
    assert metrics_files(study) == after

    # A change DVC sees and Snakemake does not (a comment in the code): DVC reruns the stage,
    # Snakemake has nothing to train, and the metrics DVC removed before the rerun come back.
    with (study / "src/wconv/__init__.py").open("a") as handle:
        handle.write("# touched\n")
    touched = run(study, "dvc", "repro")
    assert "rule train" not in touched.stdout + touched.stderr
    assert metrics_files(study) == after
    assert (study / "results/metrics.json").is_file()
    metrics = json.loads(run(study, "dvc", "metrics", "show", "--json").stdout)
    headline = next(iter(metrics.values()))["data"]["results/metrics.json"]["data"]
    assert headline["runs"]["done"] == len(after)
    assert not any("EPYC" in key or "cores" in key for key in headline.get("timing", {}))


def test_dvc_push_and_pull_through_a_local_remote(study, tmp_path):
    remote = tmp_path / "remote"
    run(study, "dvc", "remote", "add", "-f", "-d", "local", str(remote))
    run(study, "dvc", "push")
    expected = metrics_files(study)
    shutil.rmtree(study / "results" / "runs")
    # The shared-filesystem settings of docs/cluster.md: links into one group-writable cache.
    run(study, "dvc", "config", "cache.type", "symlink,copy")
    run(study, "dvc", "config", "cache.shared", "group")
    shutil.rmtree(study / ".dvc" / "cache")  # a colleague's fresh checkout: all from the remote
    run(study, "dvc", "pull")
    assert sorted(metrics_files(study)) == sorted(expected)
    pulled = study / "results/runs/demo" / next(iter(expected)) / "metrics.json"
    assert pulled.is_symlink(), pulled
    cached = pulled.resolve()
    assert study / ".dvc" / "cache" in cached.parents, cached
    assert cached.parent.stat().st_mode & 0o020, oct(cached.parent.stat().st_mode)  # group-writable
    status = run(study, "dvc", "status").stdout
    assert "up to date" in status or "Data and pipelines are up to date" in status


def test_killed_workflow_restarts_without_redoing_finished_runs(tmp_path):
    root = project_copy(tmp_path / "killed")

    def small_grid(params: dict) -> None:
        workflow_grid(params)
        demo = params["presets"]["demo"]
        demo["denoising"]["kernel_sizes"] = [3]
        demo["denoising"]["seeds"] = [0]
        demo["classification"]["seeds"] = [0]

    edit_params(root, small_grid)
    command = [str(BIN / "snakemake"), "--profile", "profiles/local", "--cores", "1"]
    process = subprocess.Popen(
        command,
        cwd=root,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while not metrics_files(root) if (root / "results/runs/demo").exists() else True:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = metrics_files(root)
    assert 0 < len(finished) < len(grid(root))
    runs = root / "results" / "runs" / "demo"
    histories = {r: (runs / r / "history.csv").read_bytes() for r in finished}
    tests = {r: json.loads((runs / r / "metrics.json").read_text())["test"] for r in finished}
    # A hard kill leaves Snakemake's directory lock behind: the documented restart is
    # `--unlock`, then the same command (the profile sets --rerun-incomplete).
    run(root, *command, "--unlock")
    result = run(root, *command)
    complete = metrics_files(root)
    assert sorted(complete) == sorted(grid(root))
    # Snakemake may redo a job it saw start but not end (--rerun-incomplete); the run then
    # resumes from its last checkpoint: no epoch is trained twice and the results are the same.
    for run_id in finished:
        assert (runs / run_id / "history.csv").read_bytes() == histories[run_id], run_id
        metrics = json.loads((runs / run_id / "metrics.json").read_text())
        assert metrics["test"] == tests[run_id], run_id
    assert (root / "results" / "index.html").exists()
    assert "rule train" in result.stdout + result.stderr
