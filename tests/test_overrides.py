"""Settings reach the jobs, and presets never share runs: one tiny real Snakemake run.

A `--configfile` (epochs, a density list) and a `--config` (the data path) override params.yaml
and beat the preset; the trained run's config.yaml and metrics.json must show them. The demo's
runs then live under the demo's runs root only, so the paper preset counts none of them.
"""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from project import edit_params, project_copy, run

pytestmark = pytest.mark.slow


def test_overrides_reach_the_jobs_and_presets_do_not_mix(tmp_path):
    root = project_copy(tmp_path / "overrides")

    def one_cell(params: dict) -> None:
        demo = params["presets"]["demo"]
        demo["denoising"]["activate"] = False
        demo["coordgate"] = {"activate": False}
        demo["classification"].update(
            seeds=[0],
            conv=["weighted"],
            learned={"activate": False},
            recipe_variants={"strong": {"activate": False}},
        )

    edit_params(root, one_cell)
    # The preset says 4 epochs and density 0.8/1.2: the command line must win over both.
    (root / "override.yaml").write_text(
        yaml.safe_dump(
            {
                "classification": {
                    "recipe": {"epochs": 1},
                    "densities": [[0.7]],
                    "data": {"val_fraction": 0.3},
                }
            }
        )
    )
    result = run(
        root, "snakemake", "--profile", "profiles/local", "--cores", "1",
        "--configfile", "override.yaml", "--config", "paths={data: altdata}",
    )  # fmt: skip
    assert "rule train" in result.stdout + result.stderr
    run_id = "cls/small_cnn/weighted-d0.7/k3/s0"
    folder = root / "results/runs/demo" / run_id
    assert sorted(p.parent.name for p in (root / "results/runs").glob("**/metrics.json")) == ["s0"]
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["recipe"]["epochs"] == 1 and config["data_root"] == "altdata"
    assert config["density"] == [0.7]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["run_id"] == run_id and metrics["max_epochs"] == 1
    # Prepare and report got the same settings as the training job.
    stamp = json.loads((root / "altdata/.prepared/cls.json").read_text())
    assert stamp["settings"]["val_fraction"] == 0.3, stamp
    reported = yaml.safe_load((root / "results/settings.yaml").read_text())
    assert reported["classification"]["recipe"]["epochs"] == 1
    assert reported["classification"]["data"]["val_fraction"] == 0.3
    assert reported["paths"]["data"] == "altdata" and reported["preset"] == "demo"
    assert not (root / "data/.prepared").exists()
    # The demo trains a cell's seeds in one job: its log is the cell's.
    log = (root / "results/logs/train" / f"{run_id.rsplit('/', 1)[0]}.log").read_text()
    assert f"=== wconv train {run_id}: " in log  # the session header of an appended log

    # The demo run is the demo's only: the paper preset's status counts no run done.
    wconv = (sys.executable, "-m", "wconv.cli", "status")
    paper = run(root, *wconv, "--preset", "paper").stdout
    assert " 0 done" in paper.splitlines()[-1]
    demo = run(root, *wconv, "--runs", "results/runs/demo").stdout
    assert "1 done" in demo.splitlines()[-1]
