"""The training engine: resume after SIGKILL and after a stop signal, early stopping, divergence,
and config errors caught before any training."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from wconv.data import prepare
from wconv.models import create
from wconv.models.registry import _REGISTRY, register
from wconv.nn import ConvFactory
from wconv.train import EXIT_REQUEUE, EarlyStopping, Interrupted, train_run

CLS_DATA = {"dataset": "embedded", "val_fraction": 0.2, "split_seed": 0}
DEN_DATA = {
    "dataset": "embedded",
    "patch_size": 32,
    "patches_per_image": 8,
    "eval_crop": 48,
    "val_fraction": 0.2,
    "split_seed": 0,
    "noise": {"model": "gaussian", "sigma": 0.1, "clip": False, "seed": 0},
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    prepare(CLS_DATA, root, task="classification")
    prepare(DEN_DATA, root, task="denoising")
    return root


def _config(data_root: Path, **overrides) -> dict:
    config = {
        "run_id": "cls/small_cnn/weighted-d0.8/k3/s0",
        "task": "classification",
        "model": "small_cnn",
        "model_options": {"width": 8},
        "conv": "weighted",
        "density": [0.8],
        "kernel_size": 3,
        "seed": 0,
        "data": CLS_DATA,
        "data_root": str(data_root),
        "recipe": {"name": "paper_classification", "epochs": 3, "batch_size": 64, "lr": 0.05},
        "compute": {"device": "cpu", "deterministic": True, "threads": 1},
    }
    for key, value in overrides.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    return config


def _metrics(folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    return {k: metrics[k] for k in ("status", "best_epoch", "epochs_run", "val", "test")}


def _cli(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "wconv.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def reference(data_root, tmp_path_factory) -> Path:
    """One uninterrupted run every resume test compares against."""
    out = tmp_path_factory.mktemp("reference")
    train_run(_config(data_root), out)
    return out


def test_run_folder_contents(reference):
    for name in (
        "config.yaml",
        "env.json",
        "history.csv",
        "metrics.json",
        "confusion.csv",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (reference / name).exists(), name
    assert not (reference / ".lock").exists()
    metrics = json.loads((reference / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs_run"] == 3
    assert metrics["weighted_layers"] == 3 and metrics["seconds_per_epoch"] > 0
    assert 0 < metrics["test"]["accuracy"] <= 1 and 0 < metrics["test"]["f1_macro"] <= 1
    confusion = [
        list(map(int, line.split(",")))
        for line in (reference / "confusion.csv").read_text().split()
    ]
    assert len(confusion) == 10 and all(len(row) == 10 for row in confusion)
    rows = (reference / "history.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,train_loss,val_loss,val_metric,lr,epoch_seconds")
    assert len(rows) == 4


def test_finished_run_is_a_no_op(reference, data_root):
    before = (reference / "metrics.json").stat().st_mtime_ns
    train_run(_config(data_root), reference)
    assert (reference / "metrics.json").stat().st_mtime_ns == before


def test_sigkill_mid_training_then_rerun_gives_the_same_metrics(reference, data_root, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_config(data_root)))
    out = tmp_path / "run"
    process = _cli("train", "--config", str(config), "--out", str(out))
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "last.pt").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "metrics.json").exists()
    assert (out / ".lock").exists()  # a killed run leaves its lock: `wconv status` shows it
    rerun = _cli("train", "--config", str(config), "--out", str(out))
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert "resuming at epoch" in stderr
    assert _metrics(out) == _metrics(reference)


SIGNAL_AT_STEP = {"step": -1}  # set by a test; not a model option, so the settings stay equal


def _signal_model(
    conv: ConvFactory,
    num_classes: int = 10,
    in_channels: int = 3,
    kernel_size: int = 3,
    width: int = 8,
) -> nn.Module:
    """small_cnn that raises SIGUSR2 at its N-th training forward: a signal mid-epoch, on cue."""
    model = create("small_cnn", conv=conv, num_classes=num_classes, in_channels=in_channels,
                   kernel_size=kernel_size, width=width)  # fmt: skip
    calls = {"n": 0}

    def hook(module: nn.Module, _inputs) -> None:
        if module.training:
            calls["n"] += 1
            if calls["n"] == SIGNAL_AT_STEP["step"]:
                signal.raise_signal(signal.SIGUSR2)

    model.register_forward_pre_hook(hook)
    return model


@pytest.fixture
def signal_model_name():
    name = "signal_small_cnn"
    if name not in _REGISTRY:
        _signal_model.__name__ = name
        register("classification")(_signal_model)
    return name


def test_stop_signal_mid_epoch_checkpoints_and_resumes_exactly(
    reference, data_root, tmp_path, signal_model_name
):
    out = tmp_path / "run"
    # The embedded train split has 18 batches of 64: step 30 is in the middle of epoch 2.
    config = _config(data_root, model=signal_model_name)
    SIGNAL_AT_STEP["step"] = 30
    try:
        with pytest.raises(Interrupted, match="checkpointed epoch 2 batch 12"):
            train_run(config, out)
    finally:
        SIGNAL_AT_STEP["step"] = -1
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert (state["epoch"], state["batches_done"]) == (1, 12)
    assert not (out / "metrics.json").exists()
    resumed = train_run(config, out)
    assert resumed["status"] == "ok"
    assert _metrics(out) == _metrics(reference)
    rows = (out / "history.csv").read_text().strip().splitlines()[1:]
    assert [row.rsplit(",", 1)[1] for row in rows] == ["1", "2", "2"]  # epoch 2 resumed


def test_cli_exits_with_requeue_code_on_sigusr2(data_root, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_config(data_root, recipe={"epochs": 50})))
    out = tmp_path / "run"
    process = _cli("train", "--config", str(config), "--out", str(out))
    deadline = time.monotonic() + 120
    while not (out / ".lock").exists() or not (out / "history.csv").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGUSR2)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == EXIT_REQUEUE, stderr
    assert not (out / ".lock").exists()
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"] >= 1


def test_early_stopping_stops_at_the_expected_epoch():
    stopper = EarlyStopping(patience=3, min_delta=0.01)
    curve = [1.0, 0.8, 0.7, 0.695, 0.72, 0.71, 0.5]
    stopped_at = next(epoch for epoch, loss in enumerate(curve, 1) if stopper.update(epoch, loss))
    # 0.695 is not better than 0.7 by min_delta: epochs 4, 5, 6 are bad -> stop at 6.
    assert stopped_at == 6 and stopper.best_epoch == 3 and stopper.best == 0.7


def test_early_stopping_in_a_run(data_root, tmp_path):
    # A constant, tiny lr leaves the val loss flat: with patience 1 the run stops early.
    config = _config(
        data_root,
        recipe={"epochs": 6, "patience": 1, "lr": 1e-9, "schedule": "constant", "min_delta": 0.1},
    )
    metrics = train_run(config, tmp_path / "run")
    assert metrics["status"] == "stopped_early"
    assert metrics["epochs_run"] == 2 and metrics["best_epoch"] == 1


def test_diverging_run_is_recorded_and_exits_zero(data_root, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_config(data_root, recipe={"lr": 1e30, "epochs": 3})))
    process = _cli("train", "--config", str(config), "--out", str(tmp_path / "run"))
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "diverged"


def test_denoising_run_stores_identity_baseline_and_examples(data_root, tmp_path):
    config = _config(
        data_root,
        run_id="den/dncnn/standard/k3/s0",
        task="denoising",
        model="dncnn",
        model_options={"depth": 3, "width": 8},
        conv="standard",
        data=DEN_DATA,
        recipe={"name": "paper_denoising", "epochs": 1, "batch_size": 16, "lr": 1e-3},
    )
    config["data"] = DEN_DATA
    metrics = train_run(config, tmp_path / "run")
    assert metrics["status"] == "ok"
    assert set(metrics["test"]) == {"loss", "psnr", "ssim", "nrmse", "fsim", "uiq"}
    assert set(metrics["identity"]) == {"psnr", "ssim", "nrmse", "fsim", "uiq"}
    # sigma 0.1 noise: the noisy input's PSNR is about 20 dB
    assert 18 < metrics["identity"]["psnr"] < 22
    examples = dict(__import__("numpy").load(tmp_path / "run" / "examples.npz"))
    assert set(examples) == {"noisy", "output", "clean"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"model": "resnet57"}, "unknown model 'resnet57'; valid models:"),
        ({"recipe": {"lr": -0.1}}, "recipe.lr must be a positive number, got -0.1"),
        ({"density": [0.1, 0.9]}, "has 2 value(s) but a kernel of size 3 needs 1"),
        (
            {"data": {"dataset": "embedded", "val_fraction": 0.5, "split_seed": 42}},
            "wconv data prepare",
        ),
    ],
    ids=["unknown-model", "negative-lr", "density-length", "missing-dataset"],
)
def test_bad_config_is_one_line_error_before_training(data_root, tmp_path, override, message):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_config(data_root, **override)))
    out = tmp_path / "run"
    process = _cli("train", "--config", str(config), "--out", str(out))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert not out.exists()


def test_env_json_names_versions(reference):
    env = json.loads((reference / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    assert env["python"] == sys.version.split()[0]


def test_changed_settings_start_over_instead_of_resuming(data_root, tmp_path, caplog):
    out = tmp_path / "run"
    train_run(_config(data_root, recipe={"epochs": 2}), out)
    (out / "metrics.json").unlink()  # what Snakemake does before rerunning a changed job
    with caplog.at_level("WARNING", logger="wconv.train"):
        metrics = train_run(_config(data_root, recipe={"epochs": 2, "lr": 0.01}), out)
    assert "settings changed since the last checkpoint; starting over" in caplog.text
    rows = (out / "history.csv").read_text().strip().splitlines()[1:]
    assert [row.rsplit(",", 1)[1] for row in rows] == ["1", "1"]  # trained afresh, not resumed
    assert metrics["epochs_run"] == 2


def test_static_batches_are_part_of_the_settings_a_run_resumes_with(data_root):
    """Compute settings do not change a run's result, so a checkpoint resumes across them; but a
    CUDA-graph setting drops each epoch's short last batch (fewer steps, a shorter schedule), so
    a run does not resume across turning static batches on or off. Between the two graph
    settings, or with other compute settings changed, it does."""
    from wconv.train.config import resolve
    from wconv.train.engine import settings_digest

    def digest(**compute: object) -> str:
        return settings_digest(resolve(_config(data_root, compute={"device": "cpu", **compute})))

    eager = digest()
    assert digest(compile=True, amp="bf16", channels_last=True, threads=1) == eager
    static = digest(cuda_graph=True)
    assert static != eager
    assert digest(compile="reduce-overhead") == static == digest(compile=True, cuda_graph=True)
