"""Run-folder files shared by the trainer and ``wconv status``; imports no torch, so the report
package can use it.

One trainer per run folder: an OS lock (``flock``) on ``.lock``, held for the whole run.

The kernel releases an ``flock`` when its holder dies (even on SIGKILL), so a lock we can take
proves nobody else is training here, whatever the file says.  The file's JSON names the holder
for the refusal message and for ``wconv status``; its mtime is a heartbeat, touched every
``HEARTBEAT_S``.  Where the filesystem refuses ``flock`` (ENOLCK/ENOSYS/EOPNOTSUPP, e.g. NFS
mounted ``nolock``) the file decides: the holder is gone if it ran on this host and its pid is
dead, or ran on another host and its heartbeat is older than ``STALE_AFTER_S``.  See
docs/run-folder.md for NFS and Lustre.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wconv.errors import UserError

log = logging.getLogger("wconv.train")

HEARTBEAT_S = 60.0
STALE_AFTER_S = 600.0
_NO_FLOCK = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}


def sidecar(checkpoint: Path) -> Path:
    """``last.pt`` → ``last.pt.json``: digest, size and the run's progress (read by ``status``)."""
    return checkpoint.with_name(checkpoint.name + ".json")


def read_holder(path: Path) -> dict[str, Any]:
    """The holder recorded in a lock file ({} if unreadable: it is being written or is junk)."""
    with contextlib.suppress(OSError, ValueError):
        info = json.loads(path.read_text())
        if isinstance(info, dict):
            return info
    return {}


def describe(info: dict[str, Any]) -> str:
    job = info.get("slurm_job_id")
    where = f"pid {info.get('pid', '?')} on {info.get('host', '?')}"
    return where + (f" (SLURM job {job})" if job else "") + f" since {info.get('started', '?')}"


def short_host(host: str) -> str:
    """``node12.cluster`` → ``node12``: SLURM and ``socket`` may spell one host differently."""
    return host.split(".", 1)[0].lower()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def holder_gone(path: Path, info: dict[str, Any], stale_after: float = STALE_AFTER_S) -> bool:
    """Whether the recorded holder provably no longer runs (used where ``flock`` is unavailable)."""
    if short_host(str(info.get("host") or "")) == short_host(socket.gethostname()):
        try:
            pid = int(info.get("pid") or 0)
        except (TypeError, ValueError):
            pid = 0
        return pid <= 0 or not pid_alive(pid)  # kill(0, 0) would probe our own process group
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    return age > stale_after


def _refuse(path: Path, info: dict[str, Any]) -> UserError:
    return UserError(
        f"{path.parent} is being trained by {describe(info)}; wait for it or stop it "
        f"(if it is gone, delete {path})"
    )


@contextlib.contextmanager
def run_lock(
    path: Path, heartbeat: float = HEARTBEAT_S, stale_after: float = STALE_AFTER_S
) -> Iterator[None]:
    """Hold ``path`` for the block, or raise ``UserError`` naming the trainer that holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _refuse(path, read_holder(path)) from None
        except OSError as err:
            if err.errno not in _NO_FLOCK:
                os.close(fd)
                raise
            info = read_holder(path)
            if info and not holder_gone(path, info, stale_after):
                os.close(fd)
                raise _refuse(path, info) from None
            log.warning("%s: this filesystem has no flock; relying on the heartbeat", path)
        # The previous holder may have unlinked the file between our open and flock: then we
        # locked an orphan inode, so try again on the file that is there now.
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        os.close(fd)
    else:
        raise UserError(f"{path}: could not take the lock (it keeps changing); rerun")
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    # Written in place: replacing the file would give a new inode that nobody has locked.
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    os.fsync(fd)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat):
            with contextlib.suppress(OSError):
                os.utime(path)

    thread = threading.Thread(target=beat, name="wconv-lock-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        # Unlink before unlocking: a waiter that opened the old inode sees it is gone and retries.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)
