"""Smoke test of the `slurm/` Snakemake profile on a real one-node SLURM cluster.

The `slurm_cluster` fixture starts the cluster with tests/cluster/start_slurm.sh (root, Debian;
it installs the packages when missing). Set WCONV_SKIP_SLURM=1 to skip these tests on machines
that cannot run SLURM; anywhere else a cluster that does not start is a test failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "cluster"
PROFILE = REPO / "slurm"

# The toy workflow: two CPU jobs of one rule, and one job of a rule named `train`, which the
# profile's set-resources give --cpus-per-gpu and a --signal once the rule asks for a GPU (as the
# study's train rule does from params.yaml). Each job records what SLURM told it.
SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input: expand("out/work_{i}.txt", i=[1, 2]), "out/train.txt"

    rule work:
        output: "out/work_{i}.txt"
        threads: 1
        resources: mem_mb=100, runtime=5
        shell: "echo $SLURM_JOB_ID $SLURM_JOB_PARTITION > {output}"

    rule train:
        output: "out/train.txt"
        threads: 1
        resources: mem_mb=100, runtime=5, gpu=1
        shell: "echo $SLURM_JOB_ID $SLURM_JOB_PARTITION ${{CUDA_VISIBLE_DEVICES:-none}} > {output}"
    """
)


def _job_state(job_id: str) -> str:
    out = subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"JobState=(\S+)", out)
    assert match, f"no JobState for job {job_id}:\n{out}"
    return match.group(1)


def test_start_script_is_idempotent(slurm_cluster: str) -> None:
    pid_before = Path("/run/slurmctld.pid").read_text().strip()
    again = subprocess.run(
        [str(CLUSTER / "start_slurm.sh")], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert "starting" not in again.stdout, again.stdout  # nothing was (re)started
    assert Path("/run/slurmctld.pid").read_text().strip() == pid_before
    assert re.search(rf"node \S+ is \w+ in partition {slurm_cluster}\b", again.stdout), again.stdout


def test_profile_runs_workflow_through_slurm(slurm_cluster: str, tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    env = {**os.environ, "WCONV_SLURM_PARTITION": slurm_cluster}
    env.pop("WCONV_SLURM_ACCOUNT", None)  # the test cluster has no accounts
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        str(PROFILE),
        # Test-cluster overrides: no accounting database, so `sacct` cannot answer and job
        # states come from squeue; poll quickly instead of the plugin's 40 s first wait.
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
    ]
    started = time.monotonic()
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    log = run.stdout + run.stderr
    assert run.returncode == 0, log

    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log))
    assert len(submitted) == 3, log  # every job went through sbatch, none ran locally
    slurm_ids = set(submitted.values())

    outputs = {p.name: p.read_text().split() for p in (tmp_path / "out").iterdir()}
    assert sorted(outputs) == ["train.txt", "work_1.txt", "work_2.txt"]
    # Each output was written inside its own SLURM job, in the partition from the environment.
    assert {words[0] for words in outputs.values()} == slurm_ids
    assert all(words[1] == slurm_cluster for words in outputs.values())
    # `train` got its GPU (SLURM sets CUDA_VISIBLE_DEVICES for an allocated GPU).
    assert outputs["train.txt"][2] != "none"
    train_id = outputs["train.txt"][0]
    job_info = subprocess.run(
        ["scontrol", "show", "job", train_id], capture_output=True, text=True, check=True
    ).stdout
    # ... as sbatch --gpus=1 --cpus-per-gpu=<the rule's threads>.
    assert "TresPerJob=gres:gpu:1" in job_info, job_info
    assert "CpusPerTres=gres:gpu:1" in job_info, job_info

    for job_id in slurm_ids:
        assert _job_state(job_id) == "COMPLETED"
    # The profile's slurm-logdir, relative to the working directory, keeps successful logs.
    # (A job SLURM had to retry leaves its first attempt's log too: superset, not equality.)
    logs = {p.stem for p in (tmp_path / "results" / "logs" / "slurm").rglob("*.log")}
    assert logs >= slurm_ids, (logs, log[-3000:])
    print(f"3 SLURM jobs through the profile in {elapsed:.1f} s")
