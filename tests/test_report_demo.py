"""The demo preset's grid, its classification recipe, effect-size intervals, and the CoordGate
deblurring table with its ``summary.json`` entry (issue 19)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from wconv.report import build_report
from wconv.report.stats import mean_ci, paired_test
from wconv.study import cells, densities_for, load_params, run_config

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# the demo preset


def test_demo_grid_has_enough_seeds_and_densities() -> None:
    params = load_params(ROOT / "params.yaml", "demo")
    grid = list(cells(params))
    by_study: dict[str, list[Any]] = {}
    for cell in grid:
        by_study.setdefault(cell.study, []).append(cell)
    for study in ("classification", "denoising"):
        seeds = {cell.seed for cell in by_study[study]}
        assert len(seeds) >= 5, (study, seeds)
        # every cell (conv × density × kernel) has every seed, so each pair is complete
        per_cell: dict[str, set[int]] = {}
        for cell in by_study[study]:
            per_cell.setdefault(cell.run_id.rsplit("/", 1)[0], set()).add(cell.seed)
        assert all(found == seeds for found in per_cell.values()), per_cell
    assert len({c.seed for c in by_study["coordgate"]}) >= 3
    assert {c.model for c in by_study["coordgate"]} >= {"unet", "cg_unet"}
    section = params["classification"]
    densities = [float(d[0]) for d in densities_for(section, 3)]
    assert len(set(densities)) >= 5
    assert min(densities) >= 0.5 and max(densities) <= 1.5  # the paper's 3x3 range
    assert max(densities) - min(densities) >= 0.75  # a sweep, not a cluster around one value
    assert any(c.conv == "learned" for c in by_study["classification"])
    # the strong recipe beside the paper recipe, every seed of it
    strong = [c for c in by_study["classification"] if c.variant == "strong"]
    assert {c.conv for c in strong} == {"standard", "weighted"}
    assert {c.seed for c in strong} == {c.seed for c in by_study["classification"]}
    assert {c.kernel_size for c in by_study["denoising"]} == {3, 5}
    assert len(densities_for(params["denoising"], 5)) >= 2


def test_demo_classification_recipe_learns_digits(tmp_path: Path) -> None:
    """A correctness check of the demo recipe (its settings, shortened to 5 epochs), not a timing:
    a recipe that flips digits or uses a wrong lr stays far below 90 %."""
    from wconv.data import prepare
    from wconv.train import train_run

    params = load_params(ROOT / "params.yaml", "demo")
    config = run_config(params, "cls/small_cnn/standard/k3/s0")
    config["data_root"] = str(tmp_path / "data")
    config["recipe"] = {**config["recipe"], "epochs": 5, "patience": 5}
    config["compute"] = {**config["compute"], "threads": 2}
    prepare(config["data"], config["data_root"], task=config["task"])
    # About 15 s on an idle core; no time limit is asserted, the machine may be shared.
    metrics = train_run(config, tmp_path / "run")
    assert metrics["status"] == "ok"
    assert metrics["val"]["accuracy"] >= 0.90, metrics["val"]


# ---------------------------------------------------------------------------------------------
# effect sizes


def test_paired_ci_matches_scipy_t_interval() -> None:
    rng = np.random.default_rng(3)
    reference = {s: float(v) for s, v in enumerate(rng.normal(0.9, 0.01, 6))}
    other = {s: reference[s] + float(d) for s, d in enumerate(rng.normal(0.01, 0.005, 6))}
    paired = paired_test(reference, other)
    diff = np.array([other[s] - reference[s] for s in range(6)])
    low, high = stats.t.interval(0.95, 5, loc=diff.mean(), scale=stats.sem(diff))
    assert paired.ci_low == pytest.approx(low)
    assert paired.ci_high == pytest.approx(high)
    assert paired.ci_low < paired.delta < paired.ci_high
    assert all(math.isnan(v) for v in mean_ci([0.5]))


# ---------------------------------------------------------------------------------------------
# CoordGate deblurring table and summary entry

IDENTITY = {"loss": 0.02, "psnr": 22.0, "ssim": 0.60, "nrmse": 0.2, "fsim": 0.8, "uiq": 0.5}
DEBLUR = {"unet": [25.0, 25.4, 25.2], "cg_unet": [26.1, 26.0, 26.6]}
PARAMS = {"unet": 40_000, "cg_unet": 41_500}


def _image(psnr: float) -> dict[str, float]:
    return {"loss": 0.01, "psnr": psnr, "ssim": 0.8, "nrmse": 0.1, "fsim": 0.9, "uiq": 0.7}


def _write_deblur_run(runs: Path, model: str, seed: int, psnr: float) -> None:
    run_id = f"cg/{model}-L2/standard/k3/s{seed}"
    folder = runs / run_id
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(json.dumps({"run_id": run_id, "task": "deblurring"}))
    (folder / "env.json").write_text(json.dumps({"python": "3.11"}))
    (folder / "history.csv").write_text(
        "epoch,train_loss,val_loss,val_metric,lr,epoch_seconds\n1,0.1,0.1,20.0,0.001,1.0\n"
    )
    metrics = {
        "run_id": run_id, "study": "cg", "task": "deblurring", "model": f"{model}-L2",
        "conv": "standard", "density": [1.0], "kernel_size": 3, "seed": seed, "status": "ok",
        "best_epoch": 1, "epochs_run": 1, "max_epochs": 1, "params": PARAMS[model],
        "device": "cpu", "device_name": "Test CPU", "seconds_per_epoch": 1.0,
        "val": _image(psnr - 0.5), "test": _image(psnr), "identity": IDENTITY,
        "learned_density": None,
    }  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_deblurring_table_and_summary_entry(tmp_path: Path) -> None:
    runs, out = tmp_path / "results" / "runs", tmp_path / "results"
    for model, values in DEBLUR.items():
        for seed, psnr in enumerate(values):
            _write_deblur_run(runs, model, seed, psnr)
    report = build_report(runs, out)
    table = report.tables["coordgate_deblurring"]
    data = table.data.set_index("model")
    assert data.loc["identity", "psnr_mean"] == pytest.approx(IDENTITY["psnr"])
    for model, values in DEBLUR.items():
        assert data.loc[model, "psnr_mean"] == pytest.approx(np.mean(values))
        assert data.loc[model, "psnr_std"] == pytest.approx(np.std(values, ddof=1))
        assert data.loc[model, "params"] == PARAMS[model]
        assert data.loc[model, "depth"] == 2
        assert data.loc[model, "n"] == 3
    diff = np.subtract(DEBLUR["cg_unet"], DEBLUR["unet"])
    low, high = stats.t.interval(0.95, 2, loc=diff.mean(), scale=stats.sem(diff))
    assert data.loc["cg_unet", "delta_psnr_vs_unet"] == pytest.approx(diff.mean())
    assert data.loc["cg_unet", "ci_low_psnr_vs_unet"] == pytest.approx(low)
    assert data.loc["cg_unet", "ci_high_psnr_vs_unet"] == pytest.approx(high)
    assert data.loc["cg_unet", "p_ttest_psnr_vs_unet"] == pytest.approx(
        stats.ttest_rel(DEBLUR["cg_unet"], DEBLUR["unet"]).pvalue
    )
    assert math.isnan(data.loc["unet", "delta_psnr_vs_unet"])  # the reference is not compared

    summary = json.loads((out / "summary.json").read_text())
    block = summary["deblurring"]
    assert set(block) == {"identity", "unet/L2/standard", "cg_unet/L2/standard"}
    assert block["cg_unet/L2/standard"]["psnr_mean"] == pytest.approx(np.mean(DEBLUR["cg_unet"]))
    assert block["identity"]["psnr_mean"] == pytest.approx(IDENTITY["psnr"])
    assert (out / "tables" / "coordgate_deblurring.csv").is_file()
    page = (out / "index.html").read_text()
    section = page[page.index('<section id="coordgate">') :]
    assert "CoordGate — deblurring" in section[: section.index("</section>")]
