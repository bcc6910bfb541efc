"""The rehearsal mode of the workflow: `--config rehearse=N` on a real Snakemake run.

Every cell of the grid runs N real training steps (rule rehearse) into the preset's rehearsal
folder, the workflow ends with the cost estimate, and nothing lands among the runs.
"""

from __future__ import annotations

import csv
import json
import subprocess

import pytest

from project import edit_params, env, grid, project_copy, run

pytestmark = pytest.mark.slow


def three_cells(params: dict) -> None:
    demo = params["presets"]["demo"]
    demo["classification"].update(
        densities=[[0.8]],
        seeds=[0],
        learned={"activate": False},
        recipe_variants={"strong": {"activate": False}},
    )
    demo["denoising"].update(
        densities={3: [[0.8]]}, models=["dncnn"], kernel_sizes=[3], seeds=[0], conv=["weighted"]
    )
    demo["coordgate"] = {"activate": False}


def test_rehearse_every_cell_then_estimate(tmp_path):
    root = project_copy(tmp_path / "rehearse")
    edit_params(root, three_cells)
    expected = grid(root)
    assert len(expected) == 3
    result = run(
        root, "snakemake", "--profile", "profiles/local", "--cores", "2", "--config", "rehearse=3"
    )
    log = result.stdout + result.stderr
    assert "rule rehearse" in log and "rule train" not in log and "rule report" not in log
    rehearsals = root / "results/rehearsals/demo"
    for run_id in expected:
        measured = json.loads((rehearsals / run_id / "rehearsal.json").read_text())
        assert measured["run_id"] == run_id and measured["steps_timed"] == 3
        assert measured["seconds_per_step_median"] > 0 and measured["resume_ok"] is True
    assert not list(rehearsals.rglob("metrics.json"))
    assert not (root / "results/runs").exists()
    with (rehearsals / "cost_estimate.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["run_id"] for row in rows) == sorted(expected)

    # A bad step count is refused before any job, in one line.
    bad = subprocess.run(
        ["snakemake", "-n", "--config", "rehearse=many"],
        cwd=root, env=env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode != 0
    assert "rehearse=N needs a whole number of steps" in bad.stdout + bad.stderr
