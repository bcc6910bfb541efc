"""Packaging: the library installs into any PyTorch environment and imports only torch's stack."""

from __future__ import annotations

import doctest
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import build.util
import pytest

import wconv

ROOT = Path(__file__).resolve().parents[1]

# Top-level modules of the study's stack (the `study` extra); the library must not need any.
STUDY_MODULES = {
    "pandas",
    "matplotlib",
    "seaborn",
    "snakemake",
    "dvc",
    "piq",
    "skimage",
    "sklearn",
    "scipy",
    "yaml",
    "jsonschema",
    "torchmetrics",
}
# Distributions that must not be core requirements of the wheel.
FORBIDDEN_CORE = {"snakemake", "dvc", "seaborn", "pandas", "matplotlib", "scikit-image", "piq"}


@pytest.mark.parametrize("module", ["wconv", "wconv.nn", "wconv.models"])
def test_import_does_not_load_the_study_stack(module: str) -> None:
    # A fresh interpreter: this test process has long since imported the study stack.
    code = (
        f"import json, sys; import {module}; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert module.split(".")[0] in loaded  # the probe really imported something
    assert loaded & STUDY_MODULES == set()


def _name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower()


def test_wheel_core_requirements_are_the_library_only() -> None:
    # The metadata the wheel would carry, from the real build backend (no wheel written).
    metadata = build.util.project_wheel_metadata(ROOT, isolated=False)
    requires = metadata.get_all("Requires-Dist") or []
    core = [r for r in requires if "extra ==" not in r]
    names = {_name(r) for r in core}
    assert names == {"torch", "torchvision", "numpy"}
    for requirement in core:
        assert "==" not in requirement, f"exact pin in core requirements: {requirement}"
    assert names & FORBIDDEN_CORE == set()
    study = {_name(r) for r in requires if 'extra == "study"' in r}
    assert {"snakemake", "dvc", "pandas", "scikit-image"} <= study
    dev = {_name(r) for r in requires if 'extra == "dev"' in r}
    assert {"timm", "mypy", "mkdocs", "pytest"} <= dev
    assert metadata["Version"] == wconv.__version__


def test_constraints_pin_the_installed_study_stack() -> None:
    from importlib.metadata import version

    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[name.lower().replace("_", "-")] = pinned
    assert "wconv" not in pins
    for name in ("torch", "torchvision", "snakemake", "dvc", "timm", "mkdocs", "mypy"):
        assert pins[name] == version(name), name


def test_cli_version_is_the_package_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wconv.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert out.strip() == f"wconv {wconv.__version__}"


@pytest.mark.parametrize("module", ["wconv.nn.weighted", "wconv.nn.coordgate"])
def test_layer_docstring_examples_run(module: str) -> None:
    # The API reference shows these examples; a stale one must fail here, not mislead a reader.
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted >= 5


def test_api_reference_builds_in_strict_mode(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--quiet", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "nn" / "index.html").read_text()
    for anchor in (
        "weighted.WeightedConv2d",
        "weighted.convert",
        "weighted.fold",
        "coordgate.CoordGate",
    ):
        assert f'id="wconv.nn.{anchor}"' in page, anchor
