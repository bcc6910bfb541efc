"""Verified checkpoints: each ``.pt`` has a JSON sidecar with its SHA-256, and ``last.pt`` keeps
the previous good one as ``last.previous.pt``.

A truncated or bit-flipped checkpoint must never load silently (it would change the result) nor
fail every retry (the run would be stuck), so loading verifies the digest and falls back to the
previous checkpoint, and the caller starts over when neither is good.  Write order: the new
payload is fully written and fsynced under a temp name first, so a full disk fails before any
good file is touched.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from wconv.io import atomic_open, write_json
from wconv.runfolder import sidecar

log = logging.getLogger("wconv.train")


class CheckpointError(ValueError):
    """A checkpoint file that is missing its digest, does not match it, or cannot be loaded."""


def previous(path: Path) -> Path:
    """``last.pt`` → ``last.previous.pt``, the checkpoint before the latest one."""
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def save_checkpoint(
    path: Path, state: dict[str, Any], info: dict[str, Any] | None = None, *, keep_previous: bool
) -> None:
    """Write ``state`` to ``path`` with its digest; with ``keep_previous`` the old one is kept."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    meta = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload), **(info or {})}
    staged = path.with_name(path.name + ".new")
    with atomic_open(staged, "wb") as handle:  # ENOSPC surfaces here, before any rename
        handle.write(payload)
    if keep_previous and path.exists():
        os.replace(path, previous(path))
        if sidecar(path).exists():
            os.replace(sidecar(path), sidecar(previous(path)))
    # A kill between these two steps leaves a sidecar without its .pt: loading falls back.
    write_json(sidecar(path), meta)
    os.replace(staged, path)


def read_info(path: Path) -> dict[str, Any]:
    """The sidecar of ``path``; ``CheckpointError`` if absent or unreadable."""
    try:
        info = json.loads(sidecar(path).read_text())
    except (OSError, ValueError) as err:
        problem = f"no readable digest file {sidecar(path).name} ({err})"
        raise CheckpointError(f"{path}: {problem}") from None
    if not isinstance(info, dict) or not isinstance(info.get("sha256"), str):
        raise CheckpointError(f"{sidecar(path)}: no sha256 field")
    return info


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The verified state in ``path``; ``CheckpointError`` naming the file otherwise."""
    info = read_info(path)
    try:
        payload = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err})") from err
    digest = hashlib.sha256(payload).hexdigest()
    if digest != info["sha256"]:
        raise CheckpointError(
            f"{path}: sha256 {digest[:12]}… does not match the recorded {info['sha256'][:12]}… "
            f"({len(payload)} of {info.get('bytes', '?')} bytes): truncated or corrupted"
        )
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad archive
        raise CheckpointError(f"{path}: cannot be loaded ({type(err).__name__}: {err})") from err


def load_latest(path: Path, run: str) -> dict[str, Any] | None:
    """The newest good one of ``path`` and its previous; ``None`` (start over) if neither is."""
    for candidate in (path, previous(path)):
        if not candidate.exists():
            continue
        try:
            state = load_checkpoint(candidate)
        except CheckpointError as err:
            log.warning("%s: ignoring bad checkpoint: %s", run, err)
            continue
        if candidate != path:
            log.warning("%s: resuming from the previous checkpoint %s", run, candidate)
        return state
    if path.exists() or previous(path).exists():
        log.warning("%s: no good checkpoint left; starting the run over", run)
    return None


def remove_checkpoint(path: Path) -> None:
    for stale in (path, sidecar(path), previous(path), sidecar(previous(path))):
        stale.unlink(missing_ok=True)
    path.with_name(path.name + ".new").unlink(missing_ok=True)
