"""Shared fixtures: a one-node SLURM cluster (SLURM tests), headless Chromium (browser test), a
C++ compiler (torch.compile on CPU)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

CLUSTER = Path(__file__).resolve().parent / "cluster"
BROWSER = Path(__file__).resolve().parent / "browser"
COMPILER = Path(__file__).resolve().parent / "compiler"
PARTITION = "debug"  # start_slurm.sh's default partition


def _slurm_running() -> bool:
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return ping.returncode == 0 and "UP" in ping.stdout


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[str]:
    """A running one-node SLURM cluster; yields the partition to submit to.

    Stops the daemons afterwards only if this fixture started them.
    """
    if os.environ.get("WCONV_SKIP_SLURM") == "1":
        pytest.skip("WCONV_SKIP_SLURM=1: SLURM tests disabled on this machine")
    was_running = _slurm_running()
    # apt-get install on a fresh machine takes a few minutes; starting the daemons seconds.
    start = subprocess.run(
        [str(CLUSTER / "start_slurm.sh")], capture_output=True, text=True, timeout=900
    )
    if start.returncode != 0:
        pytest.fail(
            f"tests/cluster/start_slurm.sh failed (exit {start.returncode}); set "
            f"WCONV_SKIP_SLURM=1 where SLURM cannot run.\n{start.stdout}\n{start.stderr}"
        )
    yield PARTITION
    if not was_running:
        subprocess.run([str(CLUSTER / "stop_slurm.sh")], check=True, timeout=60)


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless Chromium executable; tests/browser/install_chromium.sh installs it if missing."""
    if os.environ.get("WCONV_ALLOW_NO_CHROMIUM") == "1":
        pytest.skip("WCONV_ALLOW_NO_CHROMIUM=1: browser test disabled on this machine")
    install = subprocess.run(
        [str(BROWSER / "install_chromium.sh")], capture_output=True, text=True, timeout=900
    )
    if install.returncode != 0:
        pytest.fail(
            f"tests/browser/install_chromium.sh failed (exit {install.returncode}); set "
            f"WCONV_ALLOW_NO_CHROMIUM=1 where Chromium cannot run.\n{install.stderr}"
        )
    return install.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def cxx_compiler() -> str:
    """A C++ compiler for torch.compile's CPU backend; tests/compiler/install_cxx.sh installs g++
    if missing."""
    install = subprocess.run(
        [str(COMPILER / "install_cxx.sh")], capture_output=True, text=True, timeout=900
    )
    if install.returncode != 0:
        pytest.fail(f"tests/compiler/install_cxx.sh failed (exit {install.returncode})\n"
                    f"{install.stderr}")  # fmt: skip
    return install.stdout.strip().splitlines()[-1]
