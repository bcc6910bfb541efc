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
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env.setdefault("GIT_AUTHOR_NAME", "wconv tests")
    env.setdefault("GIT_AUTHOR_EMAIL", "tests@example.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "wconv tests")
    env.setdefault("GIT_COMMITTER_EMAIL", "tests@example.invalid")
    return env


def _run(cwd: Path, *command: str, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def project_copy(target: Path) -> Path:
    """The workflow files of this repository in ``target``, as a fresh git + DVC project."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "params.yaml", "dvc.yaml", "workflow", "profiles", "src"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target / name)
    (target / ".gitignore").write_text(".snakemake/\nresults/logs/\n")
    _run(target, "git", "init", "-q")
    _run(target, "dvc", "init", "-q")
    _run(target, "dvc", "config", "core.analytics", "false")
    _run(target, "git", "add", "-A")
    _run(target, "git", "commit", "-qm", "project")
    return target


def _metrics_files(root: Path) -> dict[str, int]:
    runs = root / "results" / "runs"
    return {
        str(p.parent.relative_to(runs)): p.stat().st_mtime_ns for p in runs.glob("**/metrics.json")
    }


def _grid(root: Path) -> list[str]:
    out = _run(root, sys.executable, "-m", "wconv.cli", "grid").stdout
    return out.split()


def _edit_params(root: Path, edit) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    edit(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = project_copy(tmp_path_factory.mktemp("study"))
    started = time.monotonic()
    _run(root, "dvc", "repro")
    elapsed = time.monotonic() - started
    (root / "demo_seconds").write_text(f"{elapsed:.1f}")
    return root


def test_demo_study_produces_every_run_and_the_results_folder(study):
    finished = _metrics_files(study)
    assert sorted(finished) == sorted(_grid(study))
    for run_id in finished:
        metrics = json.loads((study / "results/runs" / run_id / "metrics.json").read_text())
        assert metrics["run_id"] == run_id and metrics["status"] in ("ok", "stopped_early")
    for name in ("index.html", "summary.json", "tables", "figures"):
        assert (study / "results" / name).exists(), name
    assert "cls/small_cnn" in (study / "results/index.html").read_text()
    logs = list((study / "results/logs/train").glob("**/*.log"))
    assert len(logs) == len(finished)
    # The demo's time budget is 10 minutes on 2 cores (the whole workflow, data to report).
    assert float((study / "demo_seconds").read_text()) < 600


def test_dvc_reruns_only_new_cells_then_nothing(study):
    _run(study, "git", "add", "-A")
    _run(study, "git", "commit", "-qm", "demo study")
    before = _metrics_files(study)

    def add_density(params: dict) -> None:
        params["presets"]["demo"]["classification"]["densities"].append([1.1])

    _edit_params(study, add_density)
    result = _run(study, "dvc", "repro")
    after = _metrics_files(study)
    new = sorted(set(after) - set(before))
    assert new == ["cls/small_cnn/weighted-d1.1/k3/s0", "cls/small_cnn/weighted-d1.1/k3/s1"]
    assert all(after[run] == before[run] for run in before), "a finished run was retrained"
    trained = re.findall(r"rule train:", result.stdout + result.stderr)
    assert len(trained) == 2

    _run(study, "git", "add", "-A")
    _run(study, "git", "commit", "-qm", "one more density")
    again = _run(study, "dvc", "repro")
    assert "didn't change, skipping" in again.stdout + again.stderr
    assert "rule train" not in again.stdout + again.stderr
    assert _metrics_files(study) == after


def test_dvc_push_and_pull_through_a_local_remote(study, tmp_path):
    remote = tmp_path / "remote"
    _run(study, "dvc", "remote", "add", "-f", "-d", "local", str(remote))
    _run(study, "dvc", "push")
    expected = _metrics_files(study)
    shutil.rmtree(study / "results" / "runs")
    _run(study, "dvc", "pull")
    assert sorted(_metrics_files(study)) == sorted(expected)
    status = _run(study, "dvc", "status").stdout
    assert "up to date" in status or "Data and pipelines are up to date" in status


def test_killed_workflow_restarts_without_redoing_finished_runs(tmp_path):
    root = project_copy(tmp_path / "killed")

    def small_grid(params: dict) -> None:
        demo = params["presets"]["demo"]
        demo["denoising"]["kernel_sizes"] = [3]
        demo["denoising"]["seeds"] = [0]
        demo["classification"]["seeds"] = [0]

    _edit_params(root, small_grid)
    command = [str(BIN / "snakemake"), "--profile", "profiles/local", "--cores", "1"]
    process = subprocess.Popen(
        command,
        cwd=root,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while not _metrics_files(root) if (root / "results/runs").exists() else True:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = _metrics_files(root)
    assert 0 < len(finished) < len(_grid(root))
    runs = root / "results" / "runs"
    histories = {run: (runs / run / "history.csv").read_bytes() for run in finished}
    tests = {run: json.loads((runs / run / "metrics.json").read_text())["test"] for run in finished}
    # A hard kill leaves Snakemake's directory lock behind: the documented restart is
    # `--unlock`, then the same command (the profile sets --rerun-incomplete).
    _run(root, *command, "--unlock")
    result = _run(root, *command)
    complete = _metrics_files(root)
    assert sorted(complete) == sorted(_grid(root))
    # Snakemake may redo a job it saw start but not end (--rerun-incomplete); the run then
    # resumes from its last checkpoint: no epoch is trained twice and the results are the same.
    for run in finished:
        assert (runs / run / "history.csv").read_bytes() == histories[run], run
        assert json.loads((runs / run / "metrics.json").read_text())["test"] == tests[run], run
    assert (root / "results" / "index.html").exists()
    assert "rule train" in result.stdout + result.stderr
