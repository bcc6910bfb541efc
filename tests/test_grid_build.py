"""Every cell of the study grid builds its model, and validation refuses one that would not.

The grid is validated by ``wconv grid``, by ``snakemake -n`` (the workflow resolves the params) and
by every job; a cell whose model cannot be built must be refused there, before any job is queued.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from wconv.errors import UserError
from wconv.models import create
from wconv.nn import is_weighted
from wconv.nn.weighted import fit_rings
from wconv.study import cells, check_grid, resolve_params, run_config

REPO = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((REPO / "params.yaml").read_text())
BIN = Path(sys.executable).parent


def _distinct_cells(params):
    seen = {}
    for cell in cells(params):
        seen.setdefault(cell.run_id.rsplit("/", 1)[0], cell)
    return list(seen.values())


def _build(params, cell, device: str):
    config = run_config(params, cell.run_id)
    options = dict(config["model_options"])
    options.setdefault("kernel_size", cell.kernel_size)
    with torch.device(device):
        return create(
            cell.model,
            conv=cell.conv,
            density=config["density"],
            density_range=config["density_range"],
            **options,
        )


@pytest.mark.parametrize("preset", ["paper", "demo"])
def test_every_distinct_cell_builds_on_meta(preset):
    raw = copy.deepcopy(RAW)
    # The learned-density cells are off in params.yaml; switch them on so their init is built too.
    for study in ("classification", "denoising"):
        raw[study]["learned"]["activate"] = True
    params = resolve_params(raw, preset)
    failures = []
    distinct = _distinct_cells(params)
    for cell in distinct:
        try:
            try:
                model = _build(params, cell, "meta")
            except (RuntimeError, NotImplementedError) as error:
                if "meta" not in str(error):  # a builder that reads tensor values: build on CPU
                    raise
                model = _build(params, cell, "cpu")
        except Exception as error:  # collect every failing cell, not only the first
            failures.append(f"{cell.run_id}: {type(error).__name__}: {error}")
            continue
        weighted = [m for m in model.modules() if is_weighted(m)]
        if cell.conv == "standard":
            assert not weighted, cell.run_id
        else:
            assert weighted, f"{cell.run_id}: no weighted layer"
    assert not failures, "\n".join(failures)
    assert any(c.conv == "learned" for c in distinct)


def test_nin_and_efficientnet_take_the_cell_density_on_every_kernel_size():
    params = resolve_params(RAW, "paper")
    for run_id, sizes in [
        ("cls/nin/weighted-d0.9/k3/s0", {3: [0.9], 5: [0.9, 0.9]}),
        ("cls/efficientnet_b0/weighted-d0.7/k3/s0", {3: [0.7], 5: [0.7, 0.7]}),
    ]:
        cell = next(c for c in cells(params) if c.run_id == run_id)
        model = _build(params, cell, "cpu")
        found = {}
        for module in model.modules():
            if is_weighted(module):
                found.setdefault(module.kernel_size[0], module.density.tolist())
        assert found.keys() == sizes.keys(), run_id
        for size, expected in sizes.items():
            assert found[size] == pytest.approx(expected), (run_id, size)


def test_ring_fitting_rule():
    assert fit_rings([0.9], 2) == [0.9, 0.9]
    assert fit_rings([0.1, 0.9], 3) == [0.1, 0.1, 0.9]  # the outermost value repeats outward
    assert fit_rings([0.1, 0.9], 1) == [0.9]  # the ring next to the centre keeps its value
    assert fit_rings([0.5, 0.9], 2) == [0.5, 0.9]


def _nin_grid(raw):
    raw = copy.deepcopy(raw)
    raw["preset"] = "paper"
    raw["denoising"]["activate"] = False
    raw["coordgate"]["activate"] = False
    raw["classification"]["models"] = ["nin"]
    raw["classification"]["seeds"] = [0]
    return raw


# A per-axis density fits NiN's 3x3 conv but no 5x5 conv: only building the model finds that.
PER_AXIS = [[0.8], [0.8]]


def test_check_grid_refuses_a_cell_that_does_not_build_naming_run_and_fix():
    raw = _nin_grid(RAW)
    raw["classification"]["densities"] = [PER_AXIS]
    with pytest.raises(UserError) as caught:
        resolve_params(raw)
    message = str(caught.value)
    assert "run cls/nin/weighted-d0.8_0.8/k3/s0" in message
    assert "kernel side 5 needs 2" in message and "classification.densities" in message
    assert "\n" not in message


def test_check_grid_refuses_a_learned_init_that_does_not_build():
    raw = _nin_grid(RAW)
    raw["classification"]["learned"] = {"activate": True, "init": {3: PER_AXIS}, "range": None}
    with pytest.raises(UserError, match=r"run cls/nin/learned-d0.8_0.8/k3/s0.*learned\.init"):
        resolve_params(raw)
    raw["classification"]["learned"]["init"] = {3: [1.0, 1.0]}
    with pytest.raises(UserError, match=r"learned\.init.*needs 1"):
        resolve_params(raw)


def test_duplicate_densities_or_models_are_refused():
    raw = _nin_grid(RAW)
    raw["classification"]["densities"] = [[0.8], [0.80]]
    with pytest.raises(UserError, match=r"densities lists density \['0.8'\] more than once"):
        resolve_params(raw)
    raw = _nin_grid(RAW)
    raw["classification"]["models"] = ["nin", "nin"]
    with pytest.raises(UserError, match=r"classification.models lists \['nin'\] more than once"):
        resolve_params(raw)
    raw = _nin_grid(RAW)
    raw["classification"]["seeds"] = [0, 0]
    with pytest.raises(UserError, match=r"classification\.seeds"):
        resolve_params(raw)


def test_a_grid_with_every_study_off_warns(capsys):
    raw = copy.deepcopy(RAW)
    for study in ("classification", "denoising", "coordgate"):
        raw[study]["activate"] = False
    params = resolve_params(raw)
    assert list(cells(params)) == []
    assert "warning: params: every study is switched off" in capsys.readouterr().err
    check_grid(resolve_params(RAW))
    assert "warning" not in capsys.readouterr().err


def _bad_params(root: Path) -> Path:
    raw = _nin_grid(RAW)
    raw["classification"]["densities"] = [PER_AXIS]
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_wconv_grid_refuses_a_density_that_fits_no_kernel(tmp_path):
    _bad_params(tmp_path)
    before = _listing(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "wconv.cli", "grid", "--params", "params.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: params: run cls/nin/"), lines
    assert "fix classification.densities" in lines[0]
    assert _listing(tmp_path) == before


@pytest.mark.skipif(not (BIN / "snakemake").exists(), reason="snakemake is not installed")
def test_snakemake_dry_run_refuses_a_density_that_fits_no_kernel(tmp_path):
    for name in ("Snakefile", "workflow", "profiles", "slurm"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy(source, tmp_path / name)
    _bad_params(tmp_path)
    result = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--cores", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "params: run cls/nin/weighted-d0.8_0.8/k3/s0: the model does not build" in output
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


def test_paper_preset_searches_the_stated_density_ranges_and_keeps_the_picks_apart():
    paper, picks = resolve_params(RAW, "paper"), resolve_params(RAW, "paper_picks")

    def weighted(params, study, kernel):
        return sorted(
            {
                tuple(cell.density)
                for cell in cells(params)
                if cell.study == study and cell.conv == "weighted" and cell.kernel_size == kernel
                and cell.variant is None
            }
        )  # fmt: skip

    sweep_3 = weighted(paper, "classification", 3)
    assert len(sweep_3) >= 5 and all(0.5 < d < 1.5 and d != 1.0 for (d,) in sweep_3)
    assert weighted(paper, "denoising", 3) == sweep_3
    sweep_5 = weighted(paper, "denoising", 5)
    assert len(sweep_5) >= 9
    assert all(0.05 < d1 < 1.5 and 0.5 < d2 < 1.5 for d1, d2 in sweep_5)
    # The paper's own picks (chosen on its test set) are a named alternative with its own runs.
    assert weighted(picks, "classification", 3) == [(0.75,), (0.8,), (0.9,), (0.95,), (1.15,)]
    assert weighted(picks, "denoising", 5) == [(0.1, 0.9), (0.5, 0.9), (0.6, 0.9)]
    assert picks["paths"]["runs"] != paper["paths"]["runs"]


def test_strong_recipe_is_a_grid_axis_with_its_own_run_ids():
    paper = resolve_params(RAW, "paper")
    strong = [cell for cell in cells(paper) if cell.variant == "strong"]
    assert {cell.model for cell in strong} == {"resnet56", "vgg16_bn"}
    assert {cell.conv for cell in strong} == {"standard", "weighted"}  # no learned density
    run_id = "cls/resnet56-strong/weighted-d0.8/k3/s0"
    assert run_id in {cell.run_id for cell in strong}
    config = run_config(paper, run_id)
    assert config["model"] == "resnet56" and config["recipe"]["name"] == "strong_classification"
    plain = run_config(paper, "cls/resnet56/weighted-d0.8/k3/s0")
    assert plain["recipe"]["name"] == "paper_classification"


def test_a_bad_recipe_variant_is_refused_naming_its_key():
    raw = copy.deepcopy(RAW)
    raw["classification"]["recipe_variants"]["strong"]["models"] = ["resnet57"]
    with pytest.raises(UserError, match=r"classification\.recipe_variants\.strong\.models"):
        resolve_params(raw, "paper")
