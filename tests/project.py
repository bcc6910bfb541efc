"""A disposable copy of this project (git + DVC) for end-to-end workflow tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env.setdefault("GIT_AUTHOR_NAME", "wconv tests")
    env.setdefault("GIT_AUTHOR_EMAIL", "tests@example.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "wconv tests")
    env.setdefault("GIT_COMMITTER_EMAIL", "tests@example.invalid")
    return env


def run(cwd: Path, *command: str, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def project_copy(target: Path) -> Path:
    """The workflow files of this repository in ``target``, as a fresh git + DVC project."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "params.yaml", "dvc.yaml", "workflow", "profiles", "slurm", "src"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target / name)
    (target / ".gitignore").write_text(".snakemake/\nresults/logs/\n")
    run(target, "git", "init", "-q")
    run(target, "dvc", "init", "-q")
    run(target, "dvc", "config", "core.analytics", "false")
    shutil.copy(REPO / ".dvcignore", target / ".dvcignore")  # after `dvc init`, which writes one
    run(target, "git", "add", "-A")
    run(target, "git", "commit", "-qm", "project")
    return target


def metrics_files(root: Path, preset: str = "demo") -> dict[str, int]:
    runs = root / "results" / "runs" / preset
    return {
        str(p.parent.relative_to(runs)): p.stat().st_mtime_ns for p in runs.glob("**/metrics.json")
    }


def grid(root: Path) -> list[str]:
    out = run(root, sys.executable, "-m", "wconv.cli", "grid").stdout
    return out.split()


def edit_params(root: Path, edit) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    edit(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def workflow_grid(params: dict) -> None:
    """Shrink the demo preset to the grid the workflow tests run (2 seeds, 2 densities, no learned
    cells or recipe variant, one CoordGate seed): the mechanics under test need no statistics."""
    demo = params["presets"]["demo"]
    demo["classification"]["densities"] = [[0.75], [1.25]]
    demo["classification"]["seeds"] = [0, 1]
    demo["classification"]["learned"] = {"activate": False}
    demo["classification"]["recipe_variants"] = {"strong": {"activate": False}}
    demo["denoising"]["densities"] = {3: [[0.8]], 5: [[0.1, 0.9]]}
    demo["denoising"]["seeds"] = [0, 1]
    demo["coordgate"]["seeds"] = [0]
