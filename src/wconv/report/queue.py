"""Which grid cells wait or run in the SLURM queue, from ``squeue`` (for ``wconv status``).

The Snakemake SLURM executor names every job by its workflow run (a UUID it needs for its own
status checks) and writes the rule and wildcards into the job's comment:
``rule_train_wildcards_<run id with "/" as "_">``. That comment is how a queued job is matched to
its run id. An array submission (``--slurm-array-jobs train``) carries only its first task's
wildcards, so array tasks are counted, never attributed to a run.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

TRAIN_COMMENT = "rule_train_wildcards_"
# squeue's own codes for a job that waits for resources, priority, a hold or a dependency.
WAITING = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED"})


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    state: str  # squeue's long form: PENDING, RUNNING, ...
    reason: str

    @property
    def waiting(self) -> bool:
        return self.state in WAITING

    def describe(self) -> str:
        reason = f" ({self.reason})" if self.reason and self.reason != "None" else ""
        return f"SLURM job {self.job_id} {self.state.lower()}{reason}"


@dataclass(frozen=True)
class Queue:
    """The user's train jobs in the queue: by run id, plus array tasks that name no run."""

    by_run: dict[str, QueuedJob] = field(default_factory=dict)
    array_tasks: tuple[QueuedJob, ...] = ()
    error: str = ""  # why the queue could not be read ("" when it was, or SLURM is absent)


def parse_squeue(text: str, run_ids: Iterable[str]) -> Queue:
    """``squeue --array --noheader --format=%i|%T|%r|%k`` output as a :class:`Queue`."""
    by_flat = {run_id.replace("/", "_"): run_id for run_id in run_ids}
    by_run: dict[str, QueuedJob] = {}
    array_tasks: list[QueuedJob] = []
    for line in text.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) != 4 or not parts[3].startswith(TRAIN_COMMENT):
            continue
        job = QueuedJob(job_id=parts[0], state=parts[1], reason=parts[2])
        if "_" in job.job_id:  # 123_4 or 123_[5-9]: an array task
            array_tasks.append(job)
            continue
        run_id = by_flat.get(parts[3].removeprefix(TRAIN_COMMENT))
        if run_id is not None:
            by_run[run_id] = job
    return Queue(by_run=by_run, array_tasks=tuple(array_tasks))


def slurm_queue(run_ids: Iterable[str]) -> Queue | None:
    """The queue seen by this user, or ``None`` where SLURM's ``squeue`` is not installed."""
    squeue = shutil.which("squeue")
    if squeue is None:
        return None
    try:
        result = subprocess.run(
            [squeue, "--me", "--array", "--noheader", "--format=%i|%T|%r|%k"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return Queue(error=f"squeue failed: {error}")
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return Queue(error=f"squeue failed (exit {result.returncode}): {message}")
    return parse_squeue(result.stdout, run_ids)
