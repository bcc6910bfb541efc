"""The results layer on synthetic run folders written exactly as docs/run-folder.md specifies.

The numbers are chosen by hand so that every mean, std, chosen density and p-value is known and is
recomputed here with numpy/scipy; the density with the best *test* accuracy differs on purpose from
the one with the best *validation* accuracy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from wconv.cli.report import add_parser
from wconv.report import (
    build_report,
    grid_status,
    load_published,
    options_from_params,
    parse_run_id,
    scan_runs,
)
from wconv.report.runs import read_confusion
from wconv.report.tables import OURS, Table, classification_table, timing_table

LABEL = "published (arXiv 2505.24558)"
DEAD_PID = 4_194_304 + 4242  # above Linux's largest pid_max, so never a live process


# ---------------------------------------------------------------------------------------------
# writing run folders


def write_run(
    runs: Path,
    run_id: str,
    *,
    val: dict[str, float] | None,
    test: dict[str, float] | None,
    status: str = "ok",
    identity: dict[str, float] | None = None,
    seconds: float = 1.0,
    device_name: str = "Test CPU",
    confusion: np.ndarray | None = None,
    examples: dict[str, np.ndarray] | None = None,
    epochs: int = 3,
    learned_density: list[float] | None = None,
    history_density: list[float] | None = None,
) -> Path:
    """One finished run: config.yaml, env.json, history.csv, metrics.json (+ confusion/examples)."""
    rid = parse_run_id(run_id)
    folder = runs / run_id
    folder.mkdir(parents=True)
    task = rid.task
    config = {
        "run_id": run_id,
        "task": task,
        "model": rid.model,
        "conv": rid.conv,
        "density": list(rid.density) if rid.density else 1.0,
        "kernel_size": rid.kernel_size,
        "seed": rid.seed,
        "recipe": {"epochs": epochs},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "env.json").write_text(json.dumps({"python": "3.11", "device_name": device_name}))
    main_metric = "accuracy" if task == "classification" else "psnr"
    history = pd.DataFrame(
        {
            "epoch": range(1, epochs + 1),
            "train_loss": np.linspace(2, 1, epochs),
            "val_loss": np.linspace(2.1, 1.1, epochs),
            "val_metric": np.linspace(0.5, (val or {main_metric: 0.6})[main_metric], epochs),
            "lr": np.linspace(0.1, 0.0, epochs),
            "epoch_seconds": [seconds] * epochs,
        }
    )
    if history_density is not None:  # one d per weighted layer, as JSON, like the engine
        history["density"] = [json.dumps([history_density, history_density])] * epochs
    history.to_csv(folder / "history.csv", index=False)
    metrics = {
        "run_id": run_id,
        "study": rid.prefix,
        "task": task,
        "model": rid.model,
        "conv": rid.conv,
        "density": list(rid.density) if rid.density else [1.0],
        "kernel_size": rid.kernel_size,
        "seed": rid.seed,
        "status": status,
        "best_epoch": epochs,
        "epochs_run": epochs,
        "max_epochs": epochs,
        "params": 1234,
        "device": "cpu",
        "device_name": device_name,
        "seconds_per_epoch": seconds,
        "val": val,
        "test": test,
        "identity": identity,
        "learned_density": json.dumps([learned_density]) if learned_density else None,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    if confusion is not None:
        np.savetxt(folder / "confusion.csv", confusion, delimiter=",", fmt="%d")
    if examples is not None:
        np.savez(folder / "examples.npz", **examples)
    return folder


def cls(acc: float, f1: float) -> dict[str, float]:
    return {"loss": 1.0, "accuracy": acc, "f1_macro": f1}


# The small_cnn grid: val / test accuracy per density and seed.  Density 0.8 is best on
# validation, 1.2 is best on test; 0.9 has a diverged seed; 0.8 seed 3 diverged *with* test
# metrics from its best checkpoint (which must be ignored).
STANDARD_TEST = {0: 0.60, 1: 0.62, 2: 0.61, 3: 0.59}
STANDARD_F1 = {0: 0.58, 1: 0.61, 2: 0.60, 3: 0.57}
WEIGHTED = {
    "0.8": {"val": [0.70, 0.71, 0.69], "test": [0.64, 0.67, 0.65], "f1": [0.62, 0.66, 0.63]},
    "1.2": {"val": [0.66, 0.65, 0.67], "test": [0.70, 0.72, 0.71], "f1": [0.69, 0.70, 0.70]},
    "0.9": {"val": [0.60, 0.61], "test": [0.58, 0.60], "f1": [0.57, 0.59]},
}
IDENTITY = {"loss": 0.0, "psnr": 40.0, "ssim": 0.95, "nrmse": 0.02, "fsim": 0.99, "uiq": 0.9}
DEN_STANDARD = {0: 30.0, 1: 30.5}
DEN_WEIGHTED = {"0.7": ([31.0, 31.2], [30.4, 31.1]), "0.8": ([30.8, 30.9], [31.5, 31.8])}


def den(psnr: float) -> dict[str, float]:
    return {"loss": 0.01, "psnr": psnr, "ssim": 0.9, "nrmse": 0.05, "fsim": 0.97, "uiq": 0.93}


def _confusion(seed: int, right: int) -> np.ndarray:
    matrix = np.full((5, 5), seed + 1)
    np.fill_diagonal(matrix, right)
    return matrix


def _examples(rng: np.random.Generator) -> dict[str, np.ndarray]:
    clean = rng.random((2, 3, 32, 32), dtype=np.float32)
    noisy = np.clip(clean + 0.1 * rng.standard_normal(clean.shape, dtype=np.float32), 0, 1)
    return {"noisy": noisy, "output": (clean + noisy) / 2, "clean": clean}


def make_study(runs: Path) -> None:
    """A partial study: see the constants above; plus runs in every non-finished state."""
    rng = np.random.default_rng(0)
    for seed, acc in STANDARD_TEST.items():
        write_run(
            runs,
            f"cls/small_cnn/standard/k3/s{seed}",
            val=cls(0.63, 0.6),
            test=cls(acc, STANDARD_F1[seed]),
            seconds=2.0 + 0.1 * seed,
            confusion=_confusion(seed, 20),
        )
    for density, values in WEIGHTED.items():
        for seed, (v, t, f) in enumerate(
            zip(values["val"], values["test"], values["f1"], strict=True)
        ):
            write_run(
                runs,
                f"cls/small_cnn/weighted-d{density}/k3/s{seed}",
                val=cls(v, 0.6),
                test=cls(t, f),
                seconds=2.2 + 0.1 * seed,
                confusion=_confusion(seed, 25),
            )
    write_run(runs, "cls/small_cnn/weighted-d0.9/k3/s2", val=None, test=None, status="diverged")
    write_run(
        runs,
        "cls/small_cnn/weighted-d0.8/k3/s3",
        val=cls(0.99, 0.99),
        test=cls(0.99, 0.99),
        status="diverged",
    )
    # learned: seed 0 logs its density only in history.csv, seed 1 in metrics.json (which wins
    # over the stale history value 0.5): the final density shown is (0.80 + 0.82) / 2
    write_run(
        runs,
        "cls/small_cnn/learned-d0.9/k3/s0",
        val=cls(0.66, 0.6),
        test=cls(0.63, 0.6),
        history_density=[0.8],
    )
    write_run(
        runs,
        "cls/small_cnn/learned-d0.9/k3/s1",
        val=cls(0.66, 0.6),
        test=cls(0.64, 0.6),
        learned_density=[0.82],
        history_density=[0.5],
    )
    # resnet56: standard only (the weighted cells are missing)
    for seed in (0, 1):
        write_run(runs, f"cls/resnet56/standard/k3/s{seed}", val=cls(0.5, 0.5), test=cls(0.4, 0.4))
    # denoising: dncnn 3×3 and 5×5
    for seed, psnr in DEN_STANDARD.items():
        write_run(
            runs,
            f"den/dncnn/standard/k3/s{seed}",
            val=den(psnr),
            test=den(psnr),
            identity=IDENTITY,
            seconds=0.5,
            examples=_examples(rng),
        )
    for density, (vals, tests) in DEN_WEIGHTED.items():
        for seed, (v, t) in enumerate(zip(vals, tests, strict=True)):
            write_run(
                runs,
                f"den/dncnn/weighted-d{density}/k3/s{seed}",
                val=den(v),
                test=den(t),
                identity=IDENTITY,
                seconds=0.6,
                examples=_examples(rng),
            )
    for conv in ("standard", "weighted-d0.1_0.9"):
        write_run(
            runs,
            f"den/dncnn/{conv}/k5/s0",
            val=den(29.0),
            test=den(29.5),
            identity=IDENTITY,
            examples=_examples(rng),
        )
    # non-finished states
    running = runs / "cls/small_cnn/weighted-d1.1/k3/s0"
    running.mkdir(parents=True)
    lock = {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job_id": None, "started": "t"}
    (running / ".lock").write_text(json.dumps(lock))
    pd.DataFrame({"epoch": [1, 2], "val_metric": [0.3, 0.45]}).to_csv(
        running / "history.csv", index=False
    )
    stale = runs / "cls/small_cnn/weighted-d1.1/k3/s1"
    stale.mkdir(parents=True)
    (stale / ".lock").write_text(json.dumps({**lock, "pid": DEAD_PID}))
    remote = runs / "cls/small_cnn/weighted-d1.1/k3/s2"
    remote.mkdir(parents=True)
    remote_lock = {**lock, "host": "gpu-node-17", "slurm_job_id": "4242", "pid": 1}
    (remote / ".lock").write_text(json.dumps(remote_lock))
    marked = runs / "cls/small_cnn/weighted-d1.3/k3/s0"
    marked.mkdir(parents=True)
    (marked / "failed").write_text("CUDA out of memory\n")
    (runs / "cls/small_cnn/weighted-d1.3/k3/s1").mkdir(parents=True)  # interrupted
    corrupt = runs / "cls/small_cnn/weighted-d1.3/k3/s2"
    corrupt.mkdir(parents=True)
    (corrupt / "metrics.json").write_text("{not json")


EXPECTED = ["cls/vgg16_bn/standard/k3/s0", "cls/small_cnn/weighted-d1.4/k3/s0"]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("study")
    runs, out = root / "results" / "runs", root / "results"
    make_study(runs)
    params_file = root / "params.yaml"
    params = {"report": {"wilcoxon_min_n": 6}, "classification": {"seeds": [0, 1, 2]}}
    params_file.write_text(yaml.safe_dump(params))
    report = build_report(
        runs, out, params=params, params_source=params_file, expected_run_ids=EXPECTED
    )
    return {"runs": runs, "out": out, "report": report}


def _row(table: pd.DataFrame, **where: Any) -> dict[str, Any]:
    mask = np.ones(len(table), dtype=bool)
    for key, value in where.items():
        mask &= (table[key] == value).to_numpy()
    rows = table[mask].to_dict("records")
    assert len(rows) == 1, (where, rows)
    return rows[0]


# ---------------------------------------------------------------------------------------------
# tables


def test_classification_numbers_match_numpy_and_scipy(study: dict[str, Any]) -> None:
    data = study["report"].tables["table3_classification"].data
    standard = _row(data, model="small_cnn", conv="standard")
    acc = np.array(list(STANDARD_TEST.values()))
    assert standard["n"] == 4 and standard["n_diverged"] == 0
    assert standard["accuracy_pct_mean"] == pytest.approx(100 * acc.mean())
    assert standard["accuracy_pct_std"] == pytest.approx(100 * acc.std(ddof=1))
    assert standard["f1_macro_mean"] == pytest.approx(np.mean(list(STANDARD_F1.values())))

    weighted = _row(data, model="small_cnn", conv="weighted")
    chosen = WEIGHTED["0.8"]
    assert weighted["density"] == "0.8"
    assert weighted["val_accuracy_pct_mean"] == pytest.approx(100 * np.mean(chosen["val"]))
    assert weighted["n"] == 3 and weighted["n_diverged"] == 1  # seed 3 diverged: not in the mean
    assert weighted["accuracy_pct_mean"] == pytest.approx(100 * np.mean(chosen["test"]))
    assert weighted["accuracy_pct_std"] == pytest.approx(100 * np.std(chosen["test"], ddof=1))
    paired_std = [STANDARD_TEST[s] for s in range(3)]
    assert weighted["n_pairs"] == 3
    assert weighted["delta_accuracy_pct"] == pytest.approx(
        100 * np.mean(np.subtract(chosen["test"], paired_std))
    )
    expected_p = stats.ttest_rel(chosen["test"], paired_std).pvalue
    assert weighted["p_ttest_accuracy"] == pytest.approx(expected_p, rel=1e-9)
    f1_p = stats.ttest_rel(chosen["f1"], [STANDARD_F1[s] for s in range(3)]).pvalue
    assert weighted["p_ttest_f1_macro"] == pytest.approx(f1_p, rel=1e-9)
    assert math.isnan(weighted["p_wilcoxon_accuracy"])  # 3 pairs < 6
    assert weighted[f"{LABEL} accuracy_pct"] != weighted["accuracy_pct_mean"]


def test_density_is_chosen_on_validation_not_test(study: dict[str, Any]) -> None:
    best_val = max(WEIGHTED, key=lambda d: np.mean(WEIGHTED[d]["val"]))
    best_test = max(WEIGHTED, key=lambda d: np.mean(WEIGHTED[d]["test"]))
    assert (best_val, best_test) == ("0.8", "1.2")  # the fixture really separates the two
    data = study["report"].tables["table3_classification"].data
    assert _row(data, model="small_cnn", conv="weighted")["density"] == best_val
    search = study["report"].tables["density_search"].data
    chosen = search[(search["model"] == "small_cnn") & search["chosen"]]
    assert list(chosen["density"]) == ["0.8"]
    assert _row(search, model="small_cnn", density="0.9")["n_diverged"] == 1


def test_p_value_undefined_below_two_pairs_and_wilcoxon_from_six(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    test_std = [0.50, 0.52, 0.51, 0.55, 0.49, 0.53, 0.50]
    test_w = [0.56, 0.55, 0.57, 0.58, 0.52, 0.59, 0.51]
    for seed, (s, w) in enumerate(zip(test_std, test_w, strict=True)):
        write_run(runs, f"cls/m/standard/k3/s{seed}", val=cls(s, s), test=cls(s, s))
        write_run(runs, f"cls/m/weighted-d0.9/k3/s{seed}", val=cls(w, w), test=cls(w, w))
    write_run(runs, "cls/one/standard/k3/s0", val=cls(0.5, 0.5), test=cls(0.5, 0.5))
    write_run(runs, "cls/one/weighted-d0.9/k3/s0", val=cls(0.6, 0.6), test=cls(0.6, 0.6))
    _, records = scan_runs(runs)
    table = classification_table(records, load_published())
    many = _row(table.data, model="m", conv="weighted")
    assert many["p_wilcoxon_accuracy"] == pytest.approx(stats.wilcoxon(test_w, test_std).pvalue)
    one = _row(table.data, model="one", conv="weighted")
    assert one["n_pairs"] == 1 and math.isnan(one["p_ttest_accuracy"])
    rows = _display(table)
    assert rows[("one", "weighted")][0][(OURS, "p (t / Wilcoxon)")] == "n<2 / n<6"
    expected = f"{stats.ttest_rel(test_w, test_std).pvalue:.3f} / "
    expected += f"{stats.wilcoxon(test_w, test_std).pvalue:.3f}"
    assert rows[("m", "weighted")][0][(OURS, "p (t / Wilcoxon)")] == expected


def _display(table: Table) -> dict[tuple[str, str], tuple[dict[tuple[str, str], Any], str]]:
    """Display rows keyed by (model, conv); cells keyed by (group, header)."""
    rows = [dict(zip(table.columns, row, strict=True)) for row in table.rows]
    return {
        (row[("", "model")], row[("", "conv")]): (row, css)
        for row, css in zip(rows, table.row_classes, strict=True)
    }


def test_partial_study_marks_missing_and_diverged_cells(study: dict[str, Any]) -> None:
    rows = _display(study["report"].tables["table3_classification"])
    resnet_w, resnet_class = rows[("resnet56", "weighted")]
    assert resnet_w[(OURS, "accuracy % (test)")] == "—" and resnet_w[(OURS, "n seeds")] == "0"
    assert resnet_w[("", "density")] == "—" and resnet_class == "missing"
    # the published pair stays beside the missing measurement, in its own labelled columns
    assert resnet_w[(LABEL, "accuracy %")] == "43.97" and resnet_w[(LABEL, "density")] == "1.15"
    small_w, small_class = rows[("small_cnn", "weighted")]
    assert small_w[(OURS, "n seeds")] == "3 (+1 diverged ⚠)" and small_class == "diverged"
    p = stats.ttest_rel(WEIGHTED["0.8"]["test"], [STANDARD_TEST[s] for s in range(3)]).pvalue
    assert small_w[(OURS, "p (t / Wilcoxon)")] == f"{p:.3f} / n<6"
    assert resnet_w[(OURS, "p (t / Wilcoxon)")] == "—"
    assert small_w[(LABEL, "accuracy %")] == "—"  # no published value for a model not in the paper
    # vgg16_bn: expected and published, never run
    assert rows[("vgg16_bn", "standard")][0][(OURS, "accuracy % (test)")] == "—"
    assert rows[("vgg16_bn", "weighted")][0][(LABEL, "accuracy %")] == "66.94"
    learned_row, _ = rows[("small_cnn", "learned")]
    assert learned_row[("", "density")] == "learned: 0.9 → 0.81"
    learned = _row(study["report"].tables["table3_classification"].data, conv="learned")
    assert learned["n"] == 2 and learned["accuracy_pct_mean"] == pytest.approx(63.5)


def test_denoising_table_identity_and_published(study: dict[str, Any]) -> None:
    data = study["report"].tables["table5_denoising"].data
    identity = _row(data, model="dncnn", kernel_size=3, conv="identity")
    assert identity["psnr_mean"] == pytest.approx(40.0) and identity["n"] == 6
    weighted = _row(data, model="dncnn", kernel_size=3, conv="weighted")
    tests = DEN_WEIGHTED["0.7"][1]
    assert weighted["density"] == "0.7"  # best validation PSNR; 0.8 is better on test
    assert weighted["psnr_mean"] == pytest.approx(np.mean(tests))
    expected = stats.ttest_rel(tests, list(DEN_STANDARD.values())).pvalue
    assert weighted["p_ttest_psnr"] == pytest.approx(expected, rel=1e-9)
    assert weighted[f"{LABEL} psnr"] == 22.63 and weighted[f"{LABEL} density"] == "0.8"
    k5 = _row(data, model="dncnn", kernel_size=5, conv="weighted")
    assert k5["density"] == "0.1_0.9" and k5[f"{LABEL} density"] == "(0.1, 0.9)"
    assert k5[f"{LABEL} psnr"] == 23.35 and k5["n"] == 1 and math.isnan(k5["psnr_std"])
    missing = _row(data, model="nafnet", kernel_size=3, conv="standard")
    assert missing["n"] == 0 and missing[f"{LABEL} psnr"] == 24.82


def test_timing_tables(study: dict[str, Any]) -> None:
    data = study["report"].tables["table4_timing_classification"].data
    row = _row(data, model="small_cnn")
    standard = [2.0, 2.1, 2.2, 2.3]
    weighted = [2.2, 2.3, 2.4, 2.2, 2.3, 2.4, 2.2, 2.3]  # every non-diverged weighted run
    assert row["device"] == "Test CPU" and row["n_standard"] == 4 and row["n_weighted"] == 8
    assert row["ratio_weighted_over_standard"] == pytest.approx(
        np.mean(weighted) / np.mean(standard)
    )
    vgg = _row(data, model="vgg16_bn")
    assert vgg[f"{LABEL} standard_s"] == 378 and vgg[f"{LABEL} weighted_s"] == 414
    assert vgg["n_standard"] == 0
    den_timing = timing_table("denoising", scan_runs(study["runs"])[1], load_published())
    assert _row(den_timing.data, model="dncnn", kernel_size=3)["ratio_weighted_over_standard"] == (
        pytest.approx(1.2)
    )


def test_published_values_file() -> None:
    published = load_published()
    assert published.arxiv == "2505.24558" and published.label == LABEL
    vgg = published.find("classification", "vgg16_bn", 3)
    assert vgg is not None and published.find("classification", "vgg", 3) is vgg
    assert (vgg.standard["accuracy"], vgg.weighted["accuracy"]) == (56.89, 66.94)
    assert vgg.weighted_density == (0.75,)
    cgnet5 = published.find("denoising", "cgnet", 5)
    assert cgnet5 is not None and cgnet5.weighted["psnr"] == 28.07
    assert cgnet5.weighted_density == (0.6, 0.9) and cgnet5.standard["seconds_per_epoch"] == 11.02
    assert len(published.for_task("classification")) == 5
    assert len(published.for_task("denoising")) == 6


def test_published_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "published.yaml"
    bad.write_text("source: {arxiv: '1', label: published, device: x}\n")
    with pytest.raises(ValueError, match="must name the arXiv id"):
        load_published(bad)
    bad.write_text(
        "source: {arxiv: '1', label: 'published (1)', device: x}\n"
        "classification:\n  - {model: m, kernel_size: 3, standard: {accuracy: 1}, weighted: {}}\n"
    )
    with pytest.raises(ValueError, match="missing metric"):
        load_published(bad)


# ---------------------------------------------------------------------------------------------
# status


def test_grid_status_states(study: dict[str, Any]) -> None:
    status = grid_status(study["runs"], EXPECTED).set_index("run_id")
    state = status["state"].to_dict()
    assert state["cls/small_cnn/standard/k3/s0"] == "done"
    assert state["cls/small_cnn/weighted-d0.9/k3/s2"] == "diverged"
    assert state["cls/small_cnn/weighted-d1.1/k3/s0"] == "running"
    assert state["cls/small_cnn/weighted-d1.1/k3/s1"] == "failed"
    assert "stale lock" in status.loc["cls/small_cnn/weighted-d1.1/k3/s1", "detail"]
    assert state["cls/small_cnn/weighted-d1.1/k3/s2"] == "running"
    assert "SLURM job 4242" in status.loc["cls/small_cnn/weighted-d1.1/k3/s2", "detail"]
    assert state["cls/small_cnn/weighted-d1.3/k3/s0"] == "failed"
    assert status.loc["cls/small_cnn/weighted-d1.3/k3/s0", "detail"] == "CUDA out of memory"
    assert state["cls/small_cnn/weighted-d1.3/k3/s1"] == "interrupted"
    assert state["cls/small_cnn/weighted-d1.3/k3/s2"] == "corrupt"
    assert state["cls/vgg16_bn/standard/k3/s0"] == "not started"
    running = status.loc["cls/small_cnn/weighted-d1.1/k3/s0"]
    assert running["epochs_done"] == 2 and running["best_val_metric"] == pytest.approx(0.45)
    done = status.loc["cls/small_cnn/standard/k3/s0"]
    assert done["epochs_done"] == 3 and done["max_epochs"] == 3
    assert any("weighted-d1.3/k3/s2" in w for w in study["report"].warnings)


def test_metrics_that_disagree_with_the_folder_are_corrupt(tmp_path: Path) -> None:
    folder = write_run(tmp_path, "cls/m/standard/k3/s0", val=cls(0.5, 0.5), test=cls(0.5, 0.5))
    shutil.move(folder, tmp_path / "cls/m/standard/k3/s1")
    status = grid_status(tmp_path)
    assert list(status["state"]) == ["corrupt"]
    assert "disagree" in status["detail"].iloc[0]


def test_run_id_parsing() -> None:
    rid = parse_run_id("den/nafnet/weighted-d0.1_0.9/k5/s2")
    assert (rid.prefix, rid.model, rid.conv, rid.density, rid.kernel_size, rid.seed) == (
        "den",
        "nafnet",
        "weighted",
        (0.1, 0.9),
        5,
        2,
    )
    assert str(rid) == "den/nafnet/weighted-d0.1_0.9/k5/s2"
    for bad in ("cls/m/standard/k3", "cls/m/fancy/k3/s0", "cls/m/weighted-d0.1__/k3/s0"):
        with pytest.raises(ValueError):
            parse_run_id(bad)


@pytest.mark.parametrize(
    "text",
    ["5,1\n2,7\n", "a,b\n5,1\n2,7\n", ",a,b\na,5,1\nb,2,7\n", ",0,1\n0,5,1\n1,2,7\n"],
)
def test_confusion_csv_with_or_without_headers(tmp_path: Path, text: str) -> None:
    path = tmp_path / "confusion.csv"
    path.write_text(text)
    np.testing.assert_array_equal(read_confusion(path), [[5, 1], [2, 7]])


def test_report_options_from_params() -> None:
    options = options_from_params({"report": {"select_metric": {"classification": "f1_macro"}}})
    assert options.select_metric == {"classification": "f1_macro", "denoising": "psnr"}
    with pytest.raises(ValueError, match="not valid"):
        options_from_params({"report": {"select_metric": {"denoising": "accuracy"}}})
    with pytest.raises(ValueError, match="unknown report key"):
        options_from_params({"report": {"selectmetric": {}}})


def test_selection_metric_option_changes_the_choice(tmp_path: Path) -> None:
    write_run(tmp_path, "cls/m/standard/k3/s0", val=cls(0.5, 0.5), test=cls(0.5, 0.5))
    write_run(tmp_path, "cls/m/weighted-d0.5/k3/s0", val=cls(0.7, 0.4), test=cls(0.6, 0.6))
    write_run(tmp_path, "cls/m/weighted-d0.6/k3/s0", val=cls(0.6, 0.5), test=cls(0.6, 0.6))
    _, records = scan_runs(tmp_path)
    default = classification_table(records, load_published())
    assert _row(default.data, model="m", conv="weighted")["density"] == "0.5"
    options = options_from_params({"report": {"select_metric": {"classification": "f1_macro"}}})
    by_f1 = classification_table(records, load_published(), options)
    assert _row(by_f1.data, model="m", conv="weighted")["density"] == "0.6"
    assert _row(by_f1.data, model="m", conv="weighted")["val_f1_macro_mean"] == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------
# the page


VOID_TAGS = frozenset({"meta", "img", "br", "hr", "link", "input", "source", "col", "wbr"})


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        for key in ("href", "src"):
            if values.get(key):
                self.urls.append(str(values[key]))
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_TAGS:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse_page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    page.close()
    assert page.errors == [] and page.stack == [], (page.errors, page.stack)
    return page


def _check_links(page: _Page, base: Path) -> int:
    checked = 0
    for url in page.urls:
        parts = urlsplit(url)
        assert parts.scheme == "" and parts.netloc == "", f"non-relative link {url}"
        if parts.path:
            assert (base / unquote(parts.path)).exists(), f"{url} does not resolve from {base}"
        elif parts.fragment:
            assert parts.fragment in page.ids, f"anchor {url} has no target"
        checked += 1
    return checked


def test_index_is_valid_html_with_resolving_links(study: dict[str, Any]) -> None:
    out: Path = study["out"]
    page = _parse_page(out / "index.html")
    assert page.counts["html"] == page.counts["body"] == page.counts["main"] == 1
    assert page.counts["table"] == 7 and page.counts["section"] == 7  # + CoordGate table
    assert _check_links(page, out) > 40
    images = [u for u in page.urls if u.endswith(".png")]
    stems = {Path(unquote(u)).stem for u in images}
    assert {
        "fig1_confusion_small_cnn_k3",
        "fig2_denoising_k3",
        "fig3_denoising_k5",
        "density_classification",
        "density_denoising",
        "timing_classification",
        "timing_denoising",
    } <= stems
    for image in images:
        assert (out / unquote(image)).with_suffix(".svg").is_file()
    text = " ".join(page.text)
    assert "No runs yet" not in text and "wilcoxon_min_n: 6" in text  # params shown
    assert "cls/small_cnn/weighted-d0.9/k3/s2" in text and "not started" in text
    for key in ("table3_classification", "table5_denoising", "grid_status"):
        _check_links(_parse_page(out / "tables" / f"{key}.html"), out / "tables")


def test_every_table_file_labels_published_columns(study: dict[str, Any]) -> None:
    tables = study["out"] / "tables"
    for key in ("table3_classification", "table4_timing_classification", "table5_denoising"):
        csv = pd.read_csv(tables / f"{key}.csv")
        published = [c for c in csv.columns if c.startswith(LABEL)]
        assert published, key
        markdown = (tables / f"{key}.md").read_text()
        assert f"{LABEL}: " in markdown.splitlines()[2]
        assert LABEL in (tables / f"{key}.html").read_text()
    csv = pd.read_csv(tables / "table3_classification.csv")
    row = csv[(csv["model"] == "small_cnn") & (csv["conv"] == "weighted")].iloc[0]
    assert row["accuracy_pct_mean"] == pytest.approx(100 * np.mean(WEIGHTED["0.8"]["test"]))


def test_summary_json(study: dict[str, Any]) -> None:
    summary = json.loads((study["out"] / "summary.json").read_text())
    assert summary["runs"]["diverged"] == 2 and summary["runs"]["not started"] == 2
    weighted = summary["classification"]["small_cnn/k3"]["weighted"]
    assert weighted["density"] == "0.8"
    assert weighted["accuracy_pct_mean"] == pytest.approx(100 * np.mean(WEIGHTED["0.8"]["test"]))
    assert not any(key.startswith("published") for key in weighted)
    assert "vgg16_bn/k3" not in summary["classification"]
    assert summary["timing"]["denoising"]["dncnn/k3/Test CPU"]["ratio_weighted_over_standard"] == (
        pytest.approx(1.2)
    )


def test_unreadable_result_files_are_warnings_not_errors(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    rng = np.random.default_rng(1)
    for conv in ("standard", "weighted-d0.8"):
        write_run(runs, f"cls/m/{conv}/k3/s0", val=cls(0.5, 0.5), test=cls(0.5, 0.5))
        (runs / f"cls/m/{conv}/k3/s0/confusion.csv").write_text("1,2\n3\n")
        write_run(runs, f"den/d/{conv}/k3/s0", val=den(30), test=den(30), examples=_examples(rng))
    (runs / "den/d/weighted-d0.8/k3/s0/examples.npz").write_bytes(b"not a zip file")
    report = build_report(runs, tmp_path / "out")
    assert any("confusion.csv" in w for w in report.warnings)
    assert any("examples.npz: unreadable" in w for w in report.warnings)
    assert not any("confusion" in f.name or "denoising_k3" in f.name for f in report.figures)
    assert _row(report.tables["table5_denoising"].data, model="d", conv="weighted")["n"] == 1
    page = _parse_page(report.index)
    assert "examples.npz: unreadable" in " ".join(page.text)


def test_empty_runs_folder_says_no_runs_yet(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    report = build_report(tmp_path / "runs", tmp_path / "out")
    page = _parse_page(report.index)
    assert "No runs yet" in " ".join(page.text)
    _check_links(page, tmp_path / "out")
    assert report.figures == []
    assert json.loads(report.summary_path.read_text())["runs"] == {"total": 0}


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wconv")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_builds_and_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    runs, out = tmp_path / "results" / "runs", tmp_path / "results"
    write_run(runs, "cls/m/standard/k3/s0", val=cls(0.5, 0.5), test=cls(0.5, 0.5))
    expected = tmp_path / "grid.txt"
    expected.write_text("# the grid\ncls/m/standard/k3/s0\ncls/m/weighted-d0.9/k3/s0\n")
    args = _cli(["report", "--runs", str(runs), "--out", str(out), "--expected", str(expected)])
    assert args.func(args) == 0
    assert "2 runs: done 1, not started 1" in capsys.readouterr().out
    assert (out / "index.html").is_file() and (out / "tables" / "table3_classification.md").exists()
    bad = tmp_path / "params.yaml"
    bad.write_text("report: [1, 2\n")
    for argv in (["--params", str(bad)], ["--preset", "demo"], ["--expected", str(tmp_path)]):
        args = _cli(["report", "--runs", str(runs), "--out", str(out), *argv])
        assert args.func(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("wconv report: error: ") and "\n" not in err, err


def test_cli_lists_the_params_grid(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """With the repository's params file, every grid cell without a folder is 'not started'."""
    from wconv.study import load_params, run_ids

    params_file = Path(__file__).resolve().parents[1] / "params.yaml"
    grid = run_ids(load_params(params_file, "demo"))
    runs, out = tmp_path / "runs", tmp_path / "out"
    write_run(runs, grid[0], val=None, test=None, status="diverged")
    argv = ["report", "--runs", str(runs), "--out", str(out), "--params", str(params_file)]
    args = _cli([*argv, "--preset", "demo"])
    assert args.func(args) == 0
    status = json.loads((out / "summary.json").read_text())["runs"]
    assert status == {"total": len(grid), "not started": len(grid) - 1, "diverged": 1}
    page = _parse_page(out / "index.html")
    _check_links(page, out)
    assert "preset: demo" in " ".join(page.text)


def test_report_package_needs_no_training_code() -> None:
    """The report runs where only run folders are: no wconv.train, wconv.models or torch."""
    code = (
        "import sys, wconv.report, wconv.report.figures; "
        "print(sorted(m for m in ('torch', 'wconv.train', 'wconv.models') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# the browser


def _chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_chromium_renders_the_tables(study: dict[str, Any], chromium: str, tmp_path: Path) -> None:
    index = study["out"] / "index.html"
    # The DOM Chromium built: an error page or an empty report has none of these tables or cells.
    rendered = _Page()
    rendered.feed(_chromium(chromium, tmp_path / "profile", "--dump-dom", index.as_uri()).stdout)
    source = _parse_page(index)
    assert rendered.counts["table"] == source.counts["table"] == 7
    text = " ".join(rendered.text)
    assert "small_cnn" in text and "preset" in text
    standard = _row(
        study["report"].tables["table3_classification"].data, conv="standard", model="small_cnn"
    )
    assert f"{standard['accuracy_pct_mean']:.2f}" in text  # a measured cell, as the page prints it

    shot = tmp_path / "index.png"
    _chromium(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        index.as_uri(),
    )
    from PIL import Image

    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 20  # text, table rules and the dark header: far from a blank page
    # The first table starts within the first screen: its rows make many distinct grey levels.
    assert len(np.unique(pixels[600:2000].astype(int))) > 30
