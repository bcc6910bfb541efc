"""Issue 16: nothing silently wrong, nothing lost.

Each test drives a real run (tiny model, embedded data) into one state of the run-folder table in
docs/run-folder.md and checks what a rerun does with it.  Kill points come from a test hook (a
model that raises SIGUSR2 at a chosen training step) or from editing the files a kill would
leave, never from timing.
"""

from __future__ import annotations

import errno
import io
import json
import os
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import torch
import yaml

# The signal-at-step model and its registration fixture are shared with the engine tests.
from test_train_engine import SIGNAL_AT_STEP, signal_model_name  # noqa: F401
from wconv.cli import main
from wconv.data import prepare
from wconv.data.download import Source, ensure_extracted, md5sum
from wconv.errors import UserError
from wconv.report import build_report
from wconv.report.status import grid_status
from wconv.runfolder import holder_gone, run_lock, sidecar
from wconv.train import Interrupted, evaluate, train_run
from wconv.train.checkpoint import load_checkpoint, previous, save_checkpoint
from wconv.train.engine import RunFolder, build_optimizer, load_data, pick_device

REPO = Path(__file__).resolve().parents[1]
DATA = {"dataset": "embedded", "val_fraction": 0.2, "split_seed": 0}
RUN_ID = "cls/small_cnn/weighted-d0.8/k3/s0"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    prepare(DATA, root, task="classification")
    return root


def _config(data_root: Path, **recipe) -> dict:
    return {
        "run_id": RUN_ID,
        "task": "classification",
        "model": "small_cnn",
        "model_options": {"width": 4},
        "conv": "weighted",
        "density": [0.8],
        "kernel_size": 3,
        "seed": 0,
        "data": DATA,
        "data_root": str(data_root),
        "recipe": {
            "name": "paper_classification",
            "epochs": 2,
            "batch_size": 128,
            "lr": 0.05,
            **recipe,
        },
        "compute": {"device": "cpu", "deterministic": True, "threads": 1},
    }


# A constant, tiny lr leaves the val loss flat: with patience 1 the run stops after epoch 2 of 4.
EARLY = {"epochs": 4, "patience": 1, "lr": 1e-9, "schedule": "constant", "min_delta": 0.1}


def _result(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("status", "best_epoch", "epochs_run", "val", "test")}


def _sessions(out: Path) -> list[str]:
    rows = (out / "history.csv").read_text().strip().splitlines()[1:]
    return [row.rsplit(",", 1)[1] for row in rows]


@pytest.fixture(scope="module")
def reference(data_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    train_run(_config(data_root), out)
    return out


@pytest.fixture
def finished(reference, tmp_path) -> Path:
    """A copy of the finished reference run, to damage."""
    out = tmp_path / "run"
    subprocess.run(["cp", "-a", str(reference), str(out)], check=True)
    return out


def _cli(capsys, *args: str) -> tuple[int, str]:
    """``wconv ARGS`` in this process (the real entry point): exit code and stderr."""
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err


def _one_error_line(result: tuple[int, str], *needles: str) -> str:
    code, stderr = result
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# 1. Resume after the end of training -------------------------------------------------------


def test_early_stopped_run_rerun_only_finishes(data_root, tmp_path, caplog):
    out = tmp_path / "run"
    first = train_run(_config(data_root, **EARLY), out)
    assert first["status"] == "stopped_early" and first["epochs_run"] == 2
    (out / "metrics.json").unlink()  # a kill after training ended, before metrics.json
    with caplog.at_level("INFO", logger="wconv.train"):
        again = train_run(_config(data_root, **EARLY), out)
    assert _result(again) == _result(first)
    assert _sessions(out) == ["1", "1"]  # no epoch trained by the rerun
    assert "resuming at epoch" not in caplog.text
    assert "training had ended (stopped_early, epoch 2)" in caplog.text


def test_completed_run_without_metrics_does_not_resume(finished, reference, data_root, caplog):
    (finished / "metrics.json").unlink()
    with caplog.at_level("INFO", logger="wconv.train"):
        metrics = train_run(_config(data_root), finished)
    assert "resuming at epoch" not in caplog.text
    assert _result(metrics) == _result(json.loads((reference / "metrics.json").read_text()))


# 2. One trainer per run folder -------------------------------------------------------------


def test_second_trainer_refuses_naming_the_holder(data_root, tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    with run_lock(out / ".lock"):
        monkeypatch.delenv("SLURM_JOB_ID")
        with pytest.raises(UserError) as refused:
            train_run(_config(data_root), out)
    message = str(refused.value)
    assert f"pid {os.getpid()} on {socket.gethostname()} (SLURM job 4242)" in message
    assert "\n" not in message
    assert not (out / "config.yaml").exists() and not (out / "checkpoints").exists()


def test_second_trainer_cli_is_one_line_exit_2(data_root, tmp_path, capsys):
    out = tmp_path / "run"
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_config(data_root)))
    with run_lock(out / ".lock"):
        result = _cli(capsys, "train", "--config", str(config), "--out", str(out))
    _one_error_line(result, "is being trained by", f"pid {os.getpid()}")


def test_lock_of_a_dead_trainer_is_taken_over(data_root, reference, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    holder = {"pid": dead.pid, "host": socket.gethostname(), "started": "2026-01-01T00:00:00"}
    (out / ".lock").write_text(json.dumps(holder))
    metrics = train_run(_config(data_root), out)
    assert _result(metrics) == _result(json.loads((reference / "metrics.json").read_text()))
    assert not (out / ".lock").exists()


def test_heartbeat_decides_for_another_host_without_flock(tmp_path):
    lock = tmp_path / ".lock"
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere-node-7"}))
    assert not holder_gone(lock, json.loads(lock.read_text()), stale_after=600)
    old = time.time() - 3600
    os.utime(lock, (old, old))
    assert holder_gone(lock, json.loads(lock.read_text()), stale_after=600)


def test_status_reads_a_held_lock_as_running(data_root, tmp_path):
    runs = tmp_path / "runs"
    with run_lock(runs / RUN_ID / ".lock"):
        row = grid_status(runs).set_index("run_id").loc[RUN_ID]
    assert row["state"] == "running" and f"pid {os.getpid()}" in row["detail"]


# 3. Verified checkpoints -------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 400):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip], ids=["truncated", "flipped"])
def test_bad_last_checkpoint_falls_back_to_previous(finished, reference, data_root, caplog, damage):
    (finished / "metrics.json").unlink()
    last = finished / "checkpoints" / "last.pt"
    damage(last)
    with caplog.at_level("INFO", logger="wconv.train"):
        metrics = train_run(_config(data_root), finished)
    assert f"ignoring bad checkpoint: {last}" in caplog.text
    assert f"resuming from the previous checkpoint {previous(last)}" in caplog.text
    assert "resuming at epoch 2 batch 0" in caplog.text  # epoch 2 redone from epoch 1's state
    assert _result(metrics) == _result(json.loads((reference / "metrics.json").read_text()))
    assert _sessions(finished) == ["1", "2"]


def test_no_good_checkpoint_starts_over(finished, reference, data_root, caplog):
    (finished / "metrics.json").unlink()
    last = finished / "checkpoints" / "last.pt"
    _truncate(last)
    _flip(previous(last))
    with caplog.at_level("WARNING", logger="wconv.train"):
        metrics = train_run(_config(data_root), finished)
    assert "no good checkpoint left; starting the run over" in caplog.text
    assert _result(metrics) == _result(json.loads((reference / "metrics.json").read_text()))
    assert _sessions(finished) == ["1", "1"]


def test_disk_full_during_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1}, {"epoch": 1}, keep_previous=True)

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, {"epoch": 2}, {"epoch": 2}, keep_previous=True)
    monkeypatch.undo()
    assert load_checkpoint(path) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "last.pt.json"]


def test_disk_full_in_a_run_is_a_one_line_error(data_root, tmp_path, monkeypatch):
    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserError, match=r"no space left writing .* free disk space"):
        train_run(_config(data_root), tmp_path / "run")


# 5. Unreadable or incomplete metrics.json --------------------------------------------------


@pytest.mark.parametrize("text", ['{"run_id": "cls/', '{"run_id": "x"}'], ids=["garbage", "keys"])
def test_bad_metrics_json_is_redone_from_the_checkpoint(finished, reference, data_root, text):
    (finished / "metrics.json").write_text(text)
    metrics = train_run(_config(data_root), finished)
    assert json.loads((finished / "metrics.json").read_text()) == metrics
    assert _result(metrics) == _result(json.loads((reference / "metrics.json").read_text()))
    assert _sessions(finished) == ["1", "1"]


# 6. One-line errors ------------------------------------------------------------------------


def test_out_under_a_regular_file_is_a_user_error(data_root, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot create or write the run folder"):
        train_run(_config(data_root), tmp_path / "file" / "run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_out_is_a_user_error(data_root, tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    with pytest.raises(UserError, match="choose a writable folder"):
        train_run(_config(data_root), locked / "run")
    with pytest.raises(UserError, match="choose a writable folder"):
        train_run(_config(data_root), locked)


def test_invalid_yaml_config_is_one_line(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("recipe: {epochs: [1, 2\n")
    result = _cli(capsys, "train", "--config", str(config), "--out", str(tmp_path / "run"))
    _one_error_line(result, "is not valid YAML", str(config))


def test_garbage_history_is_a_user_error_naming_the_file(finished, data_root):
    (finished / "metrics.json").unlink()
    (finished / "history.csv").write_text("epoch,train_loss\nx,y\n")
    with pytest.raises(UserError, match=r"history.csv row 1 is malformed.*start the run over"):
        train_run(_config(data_root), finished)


def test_malformed_history_row_is_refused_on_resume(finished, data_root):
    (finished / "metrics.json").unlink()
    history = finished / "history.csv"
    history.write_text(history.read_text().replace("\n2,", "\n7,", 1))
    with pytest.raises(UserError, match=r"row 2 is malformed .*epoch 7, expected 2"):
        train_run(_config(data_root), finished)


def test_truncated_archive_with_matching_md5_is_a_clear_error(tmp_path):
    payload = os.urandom(200_000)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("data.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    archive = tmp_path / "set.tar.gz"
    archive.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    source = Source(url=None, md5=md5sum(archive), archive=str(archive))
    with pytest.raises(ValueError, match=r"truncated or damaged .*download it again"):
        ensure_extracted(source, tmp_path / "raw", archive.name)
    assert [p.name for p in (tmp_path / "raw").iterdir()] == []  # nothing half-unpacked


# 7. History, timing, status ----------------------------------------------------------------


def test_resumed_partial_epoch_is_not_timed_and_status_trusts_the_checkpoint(
    data_root,
    tmp_path,
    signal_model_name,  # noqa: F811
):
    out = tmp_path / "run"
    config = _config(data_root)
    config["run_id"] = RUN_ID
    config["model"] = signal_model_name
    config["model_options"] = {"width": 4}
    # 9 batches of 128 per epoch: step 12 is batch 3 of epoch 2.
    SIGNAL_AT_STEP["step"] = 12
    try:
        with pytest.raises(Interrupted, match="checkpointed epoch 2 batch 3"):
            train_run(config, out)
    finally:
        SIGNAL_AT_STEP["step"] = -1
    # A kill between history.csv and last.pt leaves one row too many: the checkpoint decides.
    history = out / "history.csv"
    rows = history.read_text().splitlines()
    history.write_text("\n".join([*rows, rows[1].replace("1,", "2,", 1)]) + "\n")
    runs = tmp_path / "runs"
    (runs / RUN_ID).parent.mkdir(parents=True)
    out = out.rename(runs / RUN_ID)
    assert grid_status(runs).set_index("run_id").loc[RUN_ID]["epochs_done"] == 1
    metrics = train_run(config, out)
    seconds = [r.split(",")[5] for r in (out / "history.csv").read_text().split()]
    assert seconds[1] != "" and seconds[2] == ""  # epoch 2 was resumed mid-way
    assert metrics["seconds_per_epoch"] == pytest.approx(float(seconds[1]))
    assert _sessions(out) == ["1", "2"]


# 8. Optimizer kernels and lean validation --------------------------------------------------


def test_optimizer_uses_multi_tensor_kernels_on_cpu():
    model = torch.nn.Linear(3, 2)
    for name in ("sgd", "adam", "adamw"):
        recipe = {"optimizer": name, "lr": 0.1, "density_lr": 0.1}
        optimizer = build_optimizer(model, recipe, torch.device("cpu"))
        assert optimizer.defaults["foreach"] is True


def test_epoch_validation_is_lean_and_the_final_test_is_complete(reference, data_root):
    from wconv.train.config import resolve

    cfg = resolve(_config(data_root))
    device = pick_device("cpu")
    data = load_data(cfg, device)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(10))
    model(next(iter(data.val))[0])
    lean, _ = evaluate(model, data.val, cfg, device, data.num_classes, full=False)
    full, _ = evaluate(model, data.val, cfg, device, data.num_classes)
    assert set(lean) == {"loss", "accuracy"}
    assert lean == {k: full[k] for k in lean}
    metrics = json.loads((reference / "metrics.json").read_text())
    assert set(metrics["test"]) == set(full) == set(metrics["val"])
    assert "f1_macro" in metrics["test"]


# 4. Reports never silently emptied ---------------------------------------------------------


def _runs_with(reference: Path, root: Path) -> Path:
    (root / RUN_ID).parent.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(reference), str(root / RUN_ID)], check=True)
    return root


def test_report_refuses_a_missing_runs_folder(tmp_path):
    with pytest.raises(ValueError, match="no such folder"):
        build_report(tmp_path / "runz", tmp_path / "out")


def test_report_never_replaces_results_with_fewer(reference, tmp_path):
    runs = _runs_with(reference, tmp_path / "runs")
    out = tmp_path / "out"
    first = build_report(runs, out)
    assert first.summary["runs"]["done"] == 1
    (tmp_path / "other").mkdir()
    summary = (out / "summary.json").read_text()
    with pytest.raises(ValueError, match=r"reports 1 finished runs but .* has only 0"):
        build_report(tmp_path / "other", out)
    assert (out / "summary.json").read_text() == summary
    stale = out / "figures" / "old_figure.png"
    stale.write_bytes(b"png")
    again = build_report(tmp_path / "other", out, allow_empty=True)
    assert again.summary["runs"] == {"total": 0}
    assert not stale.exists()
    assert not any((out / "figures").glob("*.png"))


def test_report_and_status_cli_refuse_a_missing_runs_folder(tmp_path, capsys):
    code, stderr = _cli(
        capsys, "report", "--runs", str(tmp_path / "runz"), "--out", str(tmp_path / "out")
    )
    assert code == 2 and "no such folder" in stderr and len(stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()
    params = str(REPO / "params.yaml")
    status = _cli(capsys, "status", "--params", params, "--runs", str(tmp_path / "runz"))
    _one_error_line(status, "no such folder", "runz")


# Row "failed marker" and "settings changed" of the table are in test_train_engine.py; this is
# the sidecar that status reads, written with every checkpoint.
def test_checkpoint_sidecar_records_progress(reference):
    info = json.loads(sidecar(reference / "checkpoints" / "last.pt").read_text())
    assert info["epoch"] == 2 and info["finished"] == "ok" and len(info["sha256"]) == 64
    assert RunFolder(reference).finished_metrics(RUN_ID) is not None


def test_history_shorter_than_the_checkpoint_is_a_user_error(finished, data_root):
    (finished / "metrics.json").unlink()
    history = finished / "history.csv"
    history.write_text("\n".join(history.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(UserError, match=r"has 1 epoch rows but the checkpoint is at epoch 2"):
        train_run(_config(data_root), finished)


def test_bad_best_checkpoint_is_a_user_error_naming_the_file(finished, data_root):
    (finished / "metrics.json").unlink()
    _flip(finished / "checkpoints" / "best.pt")
    with pytest.raises(UserError, match=r"best\.pt: sha256 .* delete .* to rerun the run"):
        train_run(_config(data_root), finished)
    assert not (finished / "metrics.json").exists()


def test_failed_marker_is_removed_and_the_run_finishes(finished, reference, data_root):
    (finished / "metrics.json").unlink()
    (finished / "failed").write_text("RuntimeError: out of memory\n")
    metrics = train_run(_config(data_root), finished)
    assert not (finished / "failed").exists()
    assert _result(metrics) == _result(json.loads((reference / "metrics.json").read_text()))


def test_checkpoint_retention_best_drops_the_resume_state_of_a_finished_run(
    data_root, reference, tmp_path
):
    config = _config(data_root)
    config["compute"]["checkpoints"] = "best"
    out = tmp_path / "kept-best"
    metrics = train_run(config, out)
    folder = out / "checkpoints"
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted(
        ["best.pt", "last.pt", sidecar(folder / "best.pt").name, sidecar(folder / "last.pt").name]
    ), left
    # last.pt keeps only that training ended: no weights, no optimizer state.
    full = (reference / "checkpoints" / "last.pt").stat().st_size
    assert (folder / "last.pt").stat().st_size < full / 2, full
    assert load_checkpoint(folder / "last.pt")["model"] is None
    assert (reference / "checkpoints" / "last.previous.pt").exists()  # the default keeps all
    assert _result(metrics) == _result(json.loads((reference / "metrics.json").read_text()))
    # A finished run stays finished: the rerun is a no-op, nothing is retrained.
    before = (out / "metrics.json").stat().st_mtime_ns
    train_run(config, out)
    assert (out / "metrics.json").stat().st_mtime_ns == before
    # Snakemake redoing a job it saw start but not end deletes metrics.json: only the final
    # step (test of best.pt, result files) is redone, the history is untouched.
    history = (out / "history.csv").read_bytes()
    (out / "metrics.json").unlink()
    again = train_run(config, out)
    assert (out / "history.csv").read_bytes() == history
    assert _result(again) == _result(metrics)
