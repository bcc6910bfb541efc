"""Speed paths of issue 17 that must not change results: identity metrics cached with the
prepared data (a second run start does not recompute them) and compact float16 storage of
degraded images (loaded back as float32, within float16 rounding of the float32 values)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

import wconv.metrics.identity as identity
from project import REPO
from wconv.data import load_split, prepare, prepared_dir
from wconv.data import noise as noise_module
from wconv.data.store import load_npy
from wconv.metrics import IMAGE_METRICS, image_metrics
from wconv.train.engine import GRAPH_WARMUP_STEPS

DEN = {
    "dataset": "embedded-den",
    "patch_size": 32,
    "patches_per_image": 2,
    "eval_crop": 64,
    "noise": {"model": "gaussian", "sigma": 0.05, "clip": False, "seed": 0},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    prepare(DEN, root)
    return root


def test_identity_metrics_are_computed_once_and_cached_with_the_data(root, monkeypatch):
    calls = []

    def counting(prediction, target):
        calls.append(len(prediction))
        return image_metrics(prediction, target)

    monkeypatch.setattr(identity, "image_metrics", counting)
    (prepared_dir(DEN, root) / identity.CACHE_NAME).unlink(missing_ok=True)
    first = identity.identity_metrics(DEN, root)
    assert calls == [2]  # the two test crops, scored once
    second = identity.identity_metrics(DEN, root)  # the next run start
    assert calls == [2] and second == first
    assert set(first) == set(IMAGE_METRICS)
    test = load_split(DEN, root, "test")
    direct = image_metrics(test.degraded, test.clean.float() / 255)
    assert first == pytest.approx({k: float(v.mean()) for k, v in direct.items()}, rel=1e-6)


def test_a_changed_prepared_folder_invalidates_the_identity_cache(root, monkeypatch):
    calls = []
    monkeypatch.setattr(
        identity, "image_metrics", lambda p, t: calls.append(1) or image_metrics(p, t)
    )
    identity.identity_metrics(DEN, root)
    manifest = prepared_dir(DEN, root) / "manifest.json"
    text = manifest.read_text()
    calls.clear()
    try:
        manifest.write_text(text.replace('"kind"', '"note": "re-prepared", "kind"', 1))
        identity.identity_metrics(DEN, root)
        assert calls == [1]
    finally:
        manifest.write_text(text)


def test_degraded_images_are_stored_as_float16_and_load_as_float32(root):
    folder = prepared_dir(DEN, root)
    stored = load_npy(folder / "train_degraded.npy")
    assert stored.dtype == np.float16
    split = load_split(DEN, root, "train")
    assert split.degraded.dtype == torch.float32
    # Recompute the float32 noise the store rounded: the difference is float16 rounding only.
    exact = np.empty(split.clean.shape, dtype=np.float32)
    noise_module.degrade(
        split.clean.numpy(), noise_module.resolve_noise(DEN["noise"]), "train", exact
    )
    error = np.abs(split.degraded.numpy() - exact)
    assert error.max() <= np.float32(2.0**-11)  # half a float16 step below 2 (values < 1.3)
    assert 0 < error.mean() < 1e-4


def test_density_projection_over_the_prebuilt_list_of_ranged_layers():
    from wconv.models import create
    from wconv.nn.weighted import is_weighted, project_densities_, ranged_layers

    learned = create("small_cnn", conv="learned", density=1.0, density_range=(0.05, 1.5))
    layers = ranged_layers(learned)
    assert layers and len(layers) == sum(1 for m in learned.modules() if is_weighted(m))
    with torch.no_grad():
        for i, layer in enumerate(layers):
            layer.density.fill_(9.0 if i % 2 else -1.0)
    project_densities_(layers)
    expected = [0.05 if i % 2 == 0 else 1.5 for i in range(len(layers))]
    assert [float(x.density.detach().max()) for x in layers] == pytest.approx(expected)
    fixed = create("small_cnn", conv="weighted", density=0.75)
    assert ranged_layers(fixed) == []  # fixed densities have no range: nothing to clamp per step


def test_compile_mode_reaches_training_and_validation_with_static_batches(
    tmp_path, monkeypatch, cxx_compiler
):
    """`compute.compile: reduce-overhead` (CUDA graphs on a GPU): the engine compiles the model
    once in that mode and uses the compiled module for the training step and the per-epoch
    validation; the short last training batch is dropped so every step has one shape. Recorded
    here; inductor itself runs in the trajectory tests below, CUDA graphs where CUDA exists."""
    from wconv.settings import resolve_run_config
    from wconv.train import train_run
    from wconv.train.engine import load_data

    calls: list[tuple[str, int]] = []
    batch_sizes: list[int] = []

    class Recorded(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            batch_sizes.append(x.shape[0])
            return self.model(x)

    def fake_compile(model, *, mode=None, **_):
        calls.append((mode, id(model)))
        return Recorded(model)

    monkeypatch.setattr(torch, "compile", fake_compile)
    cls = {"dataset": "embedded", "val_fraction": 0.2, "split_seed": 0}
    prepare(cls, tmp_path / "data", task="classification")
    config = {
        "run_id": "cls/small_cnn/learned-d1/k3/s0",
        "task": "classification",
        "model": "small_cnn",
        "model_options": {"width": 4, "input_pool": 2},
        "conv": "learned",
        "density": [1.0],
        "density_range": [0.9, 1.1],
        "kernel_size": 3,
        "seed": 0,
        "data": cls,
        "data_root": str(tmp_path / "data"),
        "recipe": {"name": "paper_classification", "epochs": 2, "batch_size": 100, "lr": 0.05},
        "compute": {"device": "cpu", "threads": 1, "compile": "reduce-overhead"},
    }
    data = load_data(resolve_run_config(config), torch.device("cpu"))
    n_train, n_val = len(data.train.inputs), len(data.val.inputs)
    assert data.train.last_batch == "drop" and len(data.train) == n_train // 100
    assert n_train % 100 and n_val % 100  # both splits have a short last batch
    metrics = train_run(config, tmp_path / "run")
    assert metrics["status"] == "ok"
    assert [mode for mode, _ in calls] == ["reduce-overhead"]  # compiled once
    val_batches = -(-n_val // 100)
    steps = n_train // 100
    # Per epoch: the training steps (all full), then validation through the same module (its
    # short last batch kept: every image is scored).
    assert batch_sizes == 2 * ([100] * steps + [100] * (val_batches - 1) + [n_val % 100])
    learned = np.ravel(json.loads(metrics["learned_density"]))
    assert learned.size and all(0.9 - 1e-6 <= d <= 1.1 + 1e-6 for d in learned), learned
    eager = load_data(
        resolve_run_config({**config, "compute": {"device": "cpu"}}), torch.device("cpu")
    )
    assert eager.train.last_batch == "keep"


def test_compile_on_a_cpu_without_a_cxx_compiler_fails_before_training(tmp_path, monkeypatch):
    """The paper settings compile (CUDA graphs on a GPU); on a CPU torch.compile builds C++, so a
    machine without a compiler gets the fix in one line, and no run folder, not an inductor
    traceback at the first step."""
    from wconv.errors import UserError
    from wconv.train import train_run

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CXX", raising=False)
    config = {
        "run_id": "cls/small_cnn/standard/k3/s0", "task": "classification", "model": "small_cnn",
        "conv": "standard", "seed": 0,
        "data": {"dataset": "embedded", "val_fraction": 0.2, "split_seed": 0},
        "data_root": str(tmp_path / "data"), "recipe": {"name": "paper_classification"},
        "compute": {"device": "cpu", "compile": "reduce-overhead"},
    }  # fmt: skip
    with pytest.raises(UserError, match=r"no C\+\+ compiler .* compute.compile: false"):
        train_run(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    eager = {**config, "compute": {"device": "cpu", "compile": False}}
    with pytest.raises(FileNotFoundError, match="not prepared"):  # eager: past it, to the data
        train_run(eager, tmp_path / "run")


def _history(folder) -> list[dict[str, float]]:
    import csv

    with (folder / "history.csv").open() as f:
        return [{k: float(r[k]) for k in ("train_loss", "val_loss")} for r in csv.DictReader(f)]


@pytest.mark.slow
@pytest.mark.parametrize("conv", ["standard", "weighted", "learned"])
def test_compiled_training_follows_the_eager_loss_trajectory(conv, cxx_compiler, tmp_path):
    """A real ``torch.compile`` (inductor, C++ on CPU) training run gives the eager run's losses,
    epoch by epoch, up to the float reassociation of fused kernels; the learned density ends at
    the same values. Short batches (the last of each split) go through the compiled module too."""
    from torch._dynamo.utils import counters

    from wconv.train import train_run

    cls = {"dataset": "embedded", "val_fraction": 0.2, "split_seed": 0}
    prepare(cls, tmp_path / "data", task="classification")
    config = {
        "run_id": f"cls/small_cnn/{conv}/k3/s0",
        "task": "classification",
        "model": "small_cnn",
        "model_options": {"width": 4, "input_pool": 2},
        "conv": conv,
        "kernel_size": 3,
        "seed": 0,
        "data": cls,
        "data_root": str(tmp_path / "data"),
        "recipe": {"name": "paper_classification", "epochs": 2, "batch_size": 200, "lr": 0.05},
        "compute": {"device": "cpu", "threads": 2},
    }
    if conv != "standard":
        config["density"] = [0.8]
    if conv == "learned":
        config["density_range"] = [0.5, 1.5]
    eager = train_run(config, tmp_path / "eager")
    torch._dynamo.reset()  # a fresh compile per test, never dynamo's recompile limit
    counters.clear()
    fast = train_run({**config, "compute": {**config["compute"], "compile": True}}, tmp_path / "c")
    assert counters["stats"]["unique_graphs"] >= 2  # really compiled: training and eval graphs
    assert eager["status"] == fast["status"] == "ok"
    trajectory, reference = _history(tmp_path / "c"), _history(tmp_path / "eager")
    assert len(trajectory) == len(reference) == 2
    for got, want in zip(trajectory, reference, strict=True):
        assert got == pytest.approx(want, rel=1e-4)
    assert fast["test"]["accuracy"] == pytest.approx(eager["test"]["accuracy"], abs=0.005)
    if conv == "learned":
        got, want = (np.ravel(json.loads(m["learned_density"])) for m in (fast, eager))
        np.testing.assert_allclose(got, want, rtol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("conv", ["standard", "weighted", "learned"])
def test_cuda_graph_training_follows_the_eager_loss_trajectory(conv, tmp_path):
    """``compute.compile: reduce-overhead`` on a GPU (CUDA graphs replaying the training step and
    validation) gives the eager run's losses. The batch size divides the train split (1,150 =
    10 x 115), so dropping the short last batch changes nothing and the runs are comparable."""
    from torch._dynamo.utils import counters

    from wconv.train import train_run

    config = _cls_config(tmp_path, conv, device="cuda", deterministic=True)
    eager = train_run(config, tmp_path / "eager")
    torch._dynamo.reset()
    counters.clear()
    graphs = {**config, "compute": {**config["compute"], "compile": "reduce-overhead"}}
    fast = train_run(graphs, tmp_path / "graphs")
    assert counters["stats"]["unique_graphs"] >= 2
    assert eager["status"] == fast["status"] == "ok"
    for got, want in zip(_history(tmp_path / "graphs"), _history(tmp_path / "eager"), strict=True):
        assert got == pytest.approx(want, rel=1e-3)
    if conv == "learned":
        got, want = (np.ravel(json.loads(m["learned_density"])) for m in (fast, eager))
        np.testing.assert_allclose(got, want, rtol=1e-3)
        assert all(0.5 - 1e-6 <= d <= 1.5 + 1e-6 for d in got)


def _cls_config(tmp_path, conv: str, **compute) -> dict:
    """small_cnn on the embedded classification data, prepared under ``tmp_path / "data"``; the
    batch size divides the train split (1,150 = 10 x 115), so static batches drop nothing."""
    cls = {"dataset": "embedded", "val_fraction": 0.2, "split_seed": 0}
    prepare(cls, tmp_path / "data", task="classification")
    config = {
        "run_id": f"cls/small_cnn/{conv}/k3/s0", "task": "classification", "model": "small_cnn",
        "conv": conv, "kernel_size": 3, "seed": 0, "data": cls,
        "data_root": str(tmp_path / "data"),
        "recipe": {"name": "paper_classification", "epochs": 3, "batch_size": 115, "lr": 0.05},
        "compute": compute,
    }  # fmt: skip
    if conv != "standard":
        config["density"] = [0.8]
    if conv == "learned":
        config["density_range"] = [0.5, 1.5]
    return config


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_the_whole_step_graph_refuses_compile_modes_that_record_their_own(mode, tmp_path):
    """``compute.cuda_graph`` records the step itself; torch.compile's CUDA-graph modes would
    record graphs inside that recording. Both the run config and params.yaml say so in one line,
    before any job starts."""
    from wconv.errors import UserError
    from wconv.settings import resolve_run_config
    from wconv.study import load_params, resolve_params

    config = _cls_config(tmp_path, "standard", device="cpu", compile=mode, cuda_graph=True)
    expected = (rf"compute.compile must be false, true or default while compute.cuda_graph is "
                rf"true .* got '{mode}'")  # fmt: skip
    with pytest.raises(UserError, match=expected):
        resolve_run_config(config)
    resolve_run_config({**config, "compute": {"compile": True, "cuda_graph": True}})
    resolve_run_config({**config, "compute": {"compile": mode, "cuda_graph": False}})
    # The paper preset records its step: overriding its compile with a graph mode alone is
    # refused, with cuda_graph switched off too it is taken.
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    paper = load_params(REPO / "params.yaml", "paper")["compute"]
    assert paper["compile"] is True and paper["cuda_graph"] is True
    with pytest.raises(UserError, match=r"^params: " + expected):
        resolve_params(raw, "paper", {"compute": {"compile": mode}})
    both = resolve_params(raw, "paper", {"compute": {"cuda_graph": False, "compile": mode}})
    assert both["compute"]["compile"] == mode


def test_a_whole_step_graph_run_on_a_cpu_trains_its_step_eagerly_on_static_batches(tmp_path):
    """Off a GPU ``compute.cuda_graph`` records nothing (there is no CUDA graph): the step runs
    eagerly, on the same static batches a GPU run gets (the short last one dropped), with plain
    float learning rates in its history."""
    from wconv.settings import resolve_run_config
    from wconv.train import train_run
    from wconv.train.engine import captures_step, load_data

    config = _cls_config(tmp_path, "learned", device="cpu", threads=1, cuda_graph=True)
    config["recipe"] = {**config["recipe"], "epochs": 2, "batch_size": 100}
    cfg = resolve_run_config(config)
    assert not captures_step(cfg, torch.device("cpu"))
    data = load_data(cfg, torch.device("cpu"))
    assert data.train.last_batch == "drop" and len(data.train.inputs) % 100
    assert train_run(config, tmp_path / "run")["status"] == "ok"
    lrs = _lrs(tmp_path / "run")  # floats, and the cosine schedule's
    assert lrs == pytest.approx([0.025, 0.0])  # half-way and the end of a cosine from 0.05


def test_device_learning_rates_are_saved_as_floats_and_refilled_in_place(tmp_path):
    """A run whose step is a CUDA graph keeps each group's learning rate in a device tensor that
    the recorded update reads. Its checkpoint holds plain floats (the same format as any run's),
    and a resume refills the live tensors instead of replacing them; a run without a graph loads
    the same checkpoint as floats. Checked on the CPU with SGD (a CPU tensor lr works there)."""
    from wconv.settings import resolve_run_config
    from wconv.train.engine import (
        TrainState,
        build_optimizer,
        build_schedule,
        load_data,
    )

    cfg = resolve_run_config(_cls_config(tmp_path, "learned", device="cpu", threads=1))
    data = load_data(cfg, torch.device("cpu"))

    def state(capturable: bool) -> TrainState:
        built = TrainState.build(cfg, data, torch.device("cpu"))
        built.optimizer = build_optimizer(built.model, cfg["recipe"], capturable=capturable)
        built.schedule = build_schedule(built.optimizer, cfg["recipe"], 50)
        return built

    trained = state(capturable=True)
    assert all(isinstance(g["lr"], torch.Tensor) for g in trained.optimizer.param_groups)
    x, y = next(iter(data.train))
    for _ in range(3):
        trained.optimizer.zero_grad()
        torch.nn.functional.cross_entropy(trained.model(x), y).backward()
        trained.optimizer.step()
        trained.schedule.step()
    saved = trained.state_dict()
    lrs = [g["lr"] for g in saved["optimizer"]["param_groups"]]
    assert all(type(lr) is float for lr in lrs) and lrs[0] < cfg["recipe"]["lr"]  # cosine moved
    assert all(
        type(v) is float for v in saved["schedule"]["base_lrs"] + saved["schedule"]["_last_lr"]
    )
    resumed = state(capturable=True)
    live = [g["lr"] for g in resumed.optimizer.param_groups]
    resumed.load_state_dict(saved)
    for group, tensor, lr in zip(resumed.optimizer.param_groups, live, lrs, strict=True):
        assert group["lr"] is tensor and float(tensor) == pytest.approx(lr)
    # Saved by another kind of session (e.g. a GPU run's fused kernels): the loading session
    # keeps its own kernels and takes the run's values.
    for group in saved["optimizer"]["param_groups"]:
        group.update(foreach=False, fused=True)
    plain = state(capturable=False)
    plain.load_state_dict(saved)
    assert [g["lr"] for g in plain.optimizer.param_groups] == pytest.approx(lrs)
    assert all(g["foreach"] and not g["fused"] for g in plain.optimizer.param_groups)
    assert torch.equal(plain.optimizer.state_dict()["state"][0]["momentum_buffer"],
                       trained.optimizer.state_dict()["state"][0]["momentum_buffer"])  # fmt: skip


@pytest.fixture
def recordings(monkeypatch):
    """Counts of whole-step recordings and graph replays, so a test knows the graph ran."""
    from wconv.train.engine import StepGraph

    counts = {"recorded": 0, "replayed": 0}
    record, replay = StepGraph._record, torch.cuda.CUDAGraph.replay

    def counted_record(self, *args):
        counts["recorded"] += 1
        return record(self, *args)

    def counted_replay(self, *args):
        counts["replayed"] += 1
        return replay(self, *args)

    monkeypatch.setattr(StepGraph, "_record", counted_record)
    monkeypatch.setattr(torch.cuda.CUDAGraph, "replay", counted_replay)
    return counts


# (conv, compile, extra compute, recipe changes, relative tolerance): eager kernels recorded in
# fp32 (same kernels as eager: close to exact), a clipped step, and inductor's bf16 kernels in
# channels_last (other fusions and roundings than eager bf16: a looser tolerance).
WHOLE_STEP_CASES = [
    ("standard", False, {}, {}, 1e-3),
    ("weighted", False, {}, {"grad_clip": 1.0}, 1e-3),
    ("learned", False, {}, {}, 1e-3),
    ("learned", True, {"amp": "bf16", "channels_last": True}, {}, 2e-2),
]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize(("conv", "compile_", "compute", "recipe", "rel"), WHOLE_STEP_CASES)
def test_whole_step_cuda_graph_follows_the_eager_loss_trajectory(
    conv, compile_, compute, recipe, rel, recordings, tmp_path
):
    """``compute.cuda_graph`` on a GPU (the step recorded after its eager warm-up steps and
    replayed for the rest of the run, learning rates read from device tensors) gives the eager
    run's losses, learned densities and schedule; with ``compile``, of inductor's kernels."""
    from wconv.train import train_run

    config = _cls_config(tmp_path, conv, device="cuda", deterministic=True, **compute)
    config["recipe"] = {**config["recipe"], **recipe}
    eager = train_run(config, tmp_path / "eager")
    assert recordings == {"recorded": 0, "replayed": 0}
    torch._dynamo.reset()
    graphed = {**config, "compute": {**config["compute"], "cuda_graph": True, "compile": compile_}}
    fast = train_run(graphed, tmp_path / "graphed")
    steps = 3 * 10  # 3 epochs of 1,150 / 115
    assert recordings == {"recorded": 1, "replayed": steps - GRAPH_WARMUP_STEPS}
    assert eager["status"] == fast["status"] == "ok"
    for got, want in zip(_history(tmp_path / "graphed"), _history(tmp_path / "eager"), strict=True):
        assert got == pytest.approx(want, rel=rel)
    assert _lrs(tmp_path / "graphed") == pytest.approx(_lrs(tmp_path / "eager"))
    if conv == "learned":
        got, want = (np.ravel(json.loads(m["learned_density"])) for m in (fast, eager))
        np.testing.assert_allclose(got, want, rtol=rel)
        assert all(0.5 - 1e-6 <= d <= 1.5 + 1e-6 for d in got)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_whole_step_cuda_graph_with_adam_follows_the_eager_denoising_run(
    root, recordings, tmp_path
):
    """The denoising recipe's Adam under a recorded step (capturable: its step count on the
    device) follows the eager run. Batch 2 divides the 6 training patches, so dropping a short
    last batch changes nothing: 3 epochs of 3 steps, the 4th recorded."""
    from wconv.train import train_run

    config = {
        "run_id": "den/dncnn/standard/k3/s0", "task": "denoising", "model": "dncnn",
        "model_options": {"depth": 4, "width": 16}, "conv": "standard", "kernel_size": 3,
        "seed": 0, "data": DEN, "data_root": str(root),
        "recipe": {"name": "paper_denoising", "epochs": 3, "batch_size": 2, "lr": 1e-3},
        "compute": {"device": "cuda", "deterministic": True},
    }  # fmt: skip
    assert len(load_split(DEN, root, "train").degraded) == 6
    eager = train_run(config, tmp_path / "eager")
    graphed = {**config, "compute": {**config["compute"], "cuda_graph": True}}
    fast = train_run(graphed, tmp_path / "graphed")
    assert recordings == {"recorded": 1, "replayed": 9 - GRAPH_WARMUP_STEPS}
    assert eager["status"] == fast["status"] == "ok"
    for got, want in zip(_history(tmp_path / "graphed"), _history(tmp_path / "eager"), strict=True):
        assert got == pytest.approx(want, rel=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_a_rehearsal_resumes_a_recorded_step_and_records_it_again(recordings, tmp_path):
    """The rehearsal's checkpoint round trip under ``compute.cuda_graph``: the resumed state
    warms up, records its own graph and replays it, with a finite loss."""
    from wconv.train.rehearsal import WARMUP_STEPS, rehearse_run

    config = _cls_config(tmp_path, "learned", device="cuda", cuda_graph=True)
    result = rehearse_run(config, tmp_path / "rehearsal", steps=2)
    assert result["cuda_graph"] is True and result["resume_ok"] is True, result
    # The run's graph: recorded at its 4th step and replayed from there through the warm-up and
    # the 2 timed steps; the resumed state's: recorded at its 4th step and replayed for its 4th
    # and 5th.
    replays = (WARMUP_STEPS + 2 - GRAPH_WARMUP_STEPS) + 2
    assert recordings == {"recorded": 2, "replayed": replays}


def _lrs(folder) -> list[float]:
    import csv

    with (folder / "history.csv").open() as f:
        return [float(r["lr"]) for r in csv.DictReader(f)]


def test_engine_speed_benchmark_times_every_kind_both_ways(tmp_path):
    """benchmarks/engine_speed.py end to end on a tiny CPU budget: whole runs and alternating
    epochs, each with the three kinds and the minimal loop, ratios against standard."""
    import csv
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "engine_speed.py"
    out = tmp_path / "speed.csv"
    args = ["--device", "cpu", "--models", "small_cnn", "--max-steps", "2", "--epochs", "2",
            "--repeats", "1", "--minimal", "--alternate", "4", "--eval-images", "64",
            "--threads", "1", "--out", str(out)]  # fmt: skip
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    with out.open() as f:
        rows = list(csv.DictReader(f))
    kinds = ["minimal", "standard", "weighted", "learned"]
    assert [(r["method"], r["kind"]) for r in rows] == [
        (method, kind) for method in ("whole runs", "alternating epochs") for kind in kinds
    ]
    for r in rows:
        assert float(r["seconds_per_epoch"]) > 0 and r["projected"] == "True"
        assert r["steps_timed"] == "2" and r["full_epoch_steps"] == "352"
    standard = [r for r in rows if r["kind"] == "standard"]
    assert all(float(r["ratio_vs_standard"]) == 1.0 for r in standard)
    alternating = [r for r in rows if r["method"] == "alternating epochs"]
    assert all(r["rounds"] == "4" and r["ratio_q1"] and r["ratio_q3"] for r in alternating)
    assert "engine/minimal-loop small_cnn fp32 (alternating epochs)" in done.stdout


def test_engine_speed_summarises_the_finished_runs_of_a_block_cut_short():
    """A GPU check runs each part under a time limit; the benchmark writes its CSV after every
    run, over the repeats that every kind that has run has finished."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "engine_speed.py"
    spec = importlib.util.spec_from_file_location("engine_speed", path)
    assert spec is not None and spec.loader is not None
    engine_speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(engine_speed)
    whole_runs = engine_speed.whole_runs
    # cut during the first repeat's learned run: standard and weighted are kept
    assert whole_runs({"standard": [[2.0, 4.0]], "weighted": [[3.0]], "learned": []}) == {
        "standard": [3.0], "weighted": [3.0]}  # fmt: skip
    # cut during the second repeat: only the first, which every kind finished
    cut = {"standard": [[1.0], [5.0]], "weighted": [[2.0], [6.0]], "learned": [[3.0]]}
    assert whole_runs(cut) == {"standard": [1.0], "weighted": [2.0], "learned": [3.0]}
    assert whole_runs({"standard": []}) == {}
