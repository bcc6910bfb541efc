"""params.yaml: presets, the grid, and bad values rejected with a clear message before any job."""

from __future__ import annotations

import copy
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wconv import settings
from wconv.errors import UserError
from wconv.settings import RECIPES
from wconv.study import load_params, resolve_params, run_config, run_ids

REPO = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def test_demo_preset_grid_and_run_ids():
    params = resolve_params(RAW, "demo")
    ids = run_ids(params)
    assert "cls/small_cnn/standard/k3/s0" in ids
    assert "cls/small_cnn/weighted-d0.75/k3/s1" in ids
    assert "cls/small_cnn/learned-d1/k3/s4" in ids
    assert "den/dncnn/weighted-d0.5_0.9/k5/s0" in ids
    assert len(ids) == len(set(ids))
    # classification: 1 model x 1 kernel x 5 seeds x (standard + 5 densities + learned), and the
    # strong recipe beside it: 5 seeds x (standard + 2 densities)
    assert sum(i.startswith("cls/small_cnn/") for i in ids) == 35
    assert sum(i.startswith("cls/small_cnn-strong/") for i in ids) == 15
    # denoising: DnCNN at 3x3 (standard + 1 density) and 5x5 (standard + 3), a NAFNet row at 3x3
    # only (kernel_sizes by model), 5 seeds each
    assert sum(i.startswith("den/dncnn/") for i in ids) == 5 * (2 + 4)
    assert sorted({i.split("/")[3] for i in ids if i.startswith("den/nafnet/")}) == ["k3"]
    assert sum(i.startswith("den/nafnet/") for i in ids) == 5 * 2


def test_paper_runs_replay_their_step_as_one_cuda_graph_and_the_demo_trains_eager():
    """docs/performance.md: the whole step recorded as one CUDA graph of inductor's kernels was
    the fastest GPU setting measured through the engine (ResNet-56 1.48 s/epoch against 2.39 s
    with reduce-overhead), and its GPU tests passed. The demo on 2 CPU cores gains nothing from
    compiling, needs no C++ compiler, and keeps every batch."""
    for preset in ("paper", "paper_picks"):
        compute = run_config(resolve_params(RAW, preset), "cls/resnet56/standard/k3/s0")["compute"]
        got = tuple(compute[k] for k in ("compile", "cuda_graph", "amp", "channels_last"))
        assert got == (True, True, "bf16", True)
    demo = run_config(resolve_params(RAW, "demo"), "cls/small_cnn/standard/k3/s0")["compute"]
    assert demo["compile"] is False and demo["cuda_graph"] is False


def test_paper_preset_grid_is_the_full_study():
    params = resolve_params(RAW, "paper")
    ids = run_ids(params)
    cls = [i for i in ids if i.startswith("cls/")]
    den = [i for i in ids if i.startswith("den/")]
    # models x seeds x (standard + 8 densities), plus ResNet-56 and VGG-16-BN under the strong
    # recipe; denoising: models x seeds x (k3: standard + 8, k5: standard + 15 density pairs)
    assert len(cls) == 6 * 3 * (1 + 8) + 2 * 3 * (1 + 8)
    assert len(den) == 3 * 3 * ((1 + 8) + (1 + 15))
    assert "cls/resnet56/weighted-d0.7/k3/s2" in ids
    assert "cls/vgg16_bn-strong/standard/k3/s0" in ids
    picks = run_ids(resolve_params(RAW, "paper_picks"))
    assert "cls/resnet56/weighted-d0.75/k3/s2" in picks


def test_kernel_sizes_by_model_and_a_model_without_sizes_is_refused():
    by_model = _with(["denoising", "kernel_sizes"], {"dncnn": [3], "nafnet": [5], "cgnet": [3, 5]})
    ids = run_ids(resolve_params(by_model, "paper"))
    assert {i.split("/")[1] + "/" + i.split("/")[3] for i in ids if i.startswith("den/")} == {
        "dncnn/k3", "nafnet/k5", "cgnet/k3", "cgnet/k5",
    }  # fmt: skip
    missing = _with(["denoising", "kernel_sizes"], {"dncnn": [3], "nafnet": [5]})
    with pytest.raises(UserError, match=r"kernel_sizes \(by model\) has no entry for \['cgnet'\]"):
        resolve_params(missing, "paper")
    with pytest.raises(UserError, match="kernel_sizes"):
        resolve_params(_with(["denoising", "kernel_sizes"], {"dncnn": [4]}), "paper")


def test_run_config_carries_the_cell_and_the_study_settings():
    params = resolve_params(RAW, "demo")
    config = run_config(params, "den/dncnn/weighted-d0.5_0.9/k5/s1")
    assert config["task"] == "denoising" and config["kernel_size"] == 5
    assert config["density"] == [0.5, 0.9] and config["seed"] == 1
    assert config["data"]["dataset"] == "embedded"
    with pytest.raises(UserError, match="not in the grid"):
        run_config(params, "cls/small_cnn/weighted-d0.33/k3/s0")


def _with(path: list, value):
    raw = copy.deepcopy(RAW)
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


_DELETE = object()

BAD = [
    (["classification", "models"], ["resnet56", "resnet57"], "unknown model 'resnet57'"),
    (["classification", "conv"], ["standard", "wieghted"], "'wieghted' is not allowed"),
    (["classification", "densities"], [[0.8], [-0.2]], "classification.densities"),
    (["denoising", "densities"], {5: [[0.5]]}, "has 1 value(s) but a kernel of size 5 needs 2"),
    (["classification", "recipe", "lr"], -0.1, "classification.recipe.lr"),
    (
        ["classification", "data", "dataset"],
        "cifar10",
        "classification.data.dataset = 'cifar10' is not allowed; use one of ['embedded', "
        "'cifar100', 'embedded-cls']",
    ),
    (["denoising", "data", "dataset"], "cifar100", "use one of ['embedded', 'div2k'"),
    (["coordgate", "data", "dataset"], "div2k", "coordgate.data.dataset = 'div2k' is not allowed"),
    (["coordgate", "data", "psf", "size"], 20, "coordgate.data.psf.size must be an odd integer"),
    (["coordgate", "data", "blur"], 1, "unknown key coordgate.data.blur"),
    (["coordgate", "data", "fields", "tran"], 1, "unknown key coordgate.data.fields.tran"),
    (["denoising", "data", "noise", "model"], "poisson", "denoising.data.noise.model 'poisson'"),
    (["denoising", "data", "noise", "mu"], 0.1, "unknown key denoising.data.noise.mu"),
    (["classification", "recipe", "optimizer"], "lion", "recipe.optimizer = 'lion' is not"),
    (["classification", "data", "val_fraction"], 1, "val_fraction must be a number in (0, 1)"),
    (["denoising", "data", "noise", "sigma"], 0, "denoising.data.noise.sigma"),
    (["classification", "seeds"], [], "classification.seeds"),
    (["compute", "amp"], "fp8", "compute.amp = 'fp8' is not allowed"),
    (["compute", "device"], "tpu", "compute.device"),
    (["classification", "kernel_sizes"], [4], "classification.kernel_sizes.0 = 4"),
    (["classification", "recipe", "name"], "fast", "classification.recipe.name = 'fast'"),
    (["paths"], _DELETE, "'paths' is a required property"),
    (["classification", "epochs"], 5, "unknown key classification.epochs; valid keys: activate"),
    (["compute", "log_every_epoch"], True, "unknown key compute.log_every_epoch"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[".".join(b[0]) for b in BAD])
def test_bad_params_are_rejected_with_the_key_named(path, value, message):
    with pytest.raises(UserError) as error:
        resolve_params(_with(path, value), "paper")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_the_recipes_are_complete_and_valid():
    for name, recipe in RECIPES.items():
        settings.check({"name": name, **recipe}, "full_recipe", "recipe")


@pytest.mark.parametrize(
    ("definition", "value", "message"),
    [
        ("compute", {"amp": "fp8"}, "compute.amp = 'fp8' is not allowed; use one of"),
        ("compute", {"device": "tpu"}, "compute.device must be auto, cpu, cuda or cuda:N"),
        ("noise", {"sigma": 2}, r"noise.sigma must be a number in \(0, 1\], got 2"),
        ("noise", {"seed": True}, "noise.seed must be a non-negative integer, got True"),
        ("full_recipe", {}, "recipe: 'optimizer' is a required property"),
        ("psf", {"levels": 1}, "psf.levels must be an integer >= 2, got 1"),
    ],
)
def test_a_schema_block_is_checked_on_its_own(definition, value, message):
    with pytest.raises(ValueError, match=message):
        settings.check(value, definition, definition.removeprefix("full_"))


def test_unknown_preset():
    with pytest.raises(UserError, match=r"preset 'quick' is not defined; defined presets: \["):
        resolve_params(RAW, "quick")


def test_missing_params_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "params.yaml")


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A copy of the workflow files, so tests can edit params.yaml freely."""
    for name in ("Snakefile", "params.yaml", "workflow", "profiles"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, symlinks=False)
        else:
            shutil.copy(source, tmp_path / name)
    return tmp_path


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bad_params_stop_snakemake_before_any_job_and_write_nothing(workdir):
    raw = _with(["classification", "models"], ["resnet57"])
    (workdir / "params.yaml").write_text(yaml.safe_dump(raw))
    result = _snakemake(workdir, "--config", "preset=paper")
    assert result.returncode != 0
    assert "unknown model 'resnet57'" in result.stdout + result.stderr
    assert not (workdir / "results").exists() and not (workdir / "data").exists()


def test_bad_params_via_cli_is_one_line(workdir):
    raw = _with(["compute", "amp"], "fp8")
    (workdir / "params.yaml").write_text(yaml.safe_dump(raw))
    result = subprocess.run(
        [sys.executable, "-m", "wconv.cli", "grid", "--preset", "paper"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: params: compute.amp = 'fp8' is not allowed")


def test_dry_run_of_the_full_paper_grid_is_fast_and_complete(workdir):
    expected = len(run_ids(resolve_params(RAW, "paper")))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = _snakemake(workdir, "-n", "--config", "preset=paper", "--quiet", "rules")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds, not wall time: the bound holds on a quiet machine and is not flaky on a busy one.
    elapsed = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert result.returncode == 0, result.stderr
    counts = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["train"] == expected
    assert counts["prepare"] == 3 and counts["report"] == 1  # cls, den, cg data
    assert counts["coordgate_experiment"] == 2  # the 1D task and the padding signal
    assert elapsed <= 10, f"dry run took {elapsed:.1f} s"


def _job_counts(stdout: str) -> dict[str, int]:
    rows = (line.split() for line in stdout.splitlines())
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()}


def test_demo_trains_a_cell_per_job_and_every_run_is_an_output(workdir):
    """``workflow.train_job: cell`` (the demo): one job per grid cell, whose outputs are the
    metrics.json of each of its seeds, so every run of the grid is still a target."""
    params = resolve_params(RAW, "demo")
    assert params["workflow"]["train_job"] == "cell"
    runs = run_ids(params)
    cells = {run_id.rsplit("/", 1)[0] for run_id in runs}
    result = _snakemake(workdir, "-n", "--config", "preset=demo", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    counts = _job_counts(result.stdout)
    train = {rule: n for rule, n in counts.items() if rule.startswith("train")}
    assert "train" not in train and sum(train.values()) == len(cells) < len(runs), counts
    # The CoordGate cells have 3 seeds, the others 5: one rule per tuple of seeds.
    assert set(train) == {"train_s0_1_2_3_4", "train_s0_1_2"}, counts
    detailed = _snakemake(workdir, "-n", "--config", "preset=demo")
    assert detailed.returncode == 0, detailed.stderr
    text = detailed.stdout + detailed.stderr
    missing = [r for r in runs if f"results/runs/demo/{r}/metrics.json" not in text]
    assert not missing, missing[:3]


def test_run_per_job_is_the_default_and_a_bad_train_job_is_refused(workdir):
    assert resolve_params(RAW, "paper")["workflow"]["train_job"] == "run"
    raw = _with(["presets", "demo", "workflow", "train_job"], "seeds")
    (workdir / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    result = _snakemake(workdir, "-n", "--config", "preset=demo")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "workflow.train_job = 'seeds' is not allowed" in output, output
