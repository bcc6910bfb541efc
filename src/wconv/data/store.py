"""On-disk helpers of the data layer: array files, the manifest that marks a finished folder,
config digests that name cache folders, and a per-folder lock.

Every file is written atomically (``wconv.io``: temporary file in its final folder, fsync,
``os.replace``), so a reader or a killed job never sees half a file; a folder counts as prepared
only once its ``manifest.json`` exists, and that file is always written last.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import wconv
from wconv.io import atomic_open, write_json
from wconv.io import read_json as read_json  # re-exported: the data modules call store.read_json

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def digest(obj: Any) -> str:
    """Short stable hash of a JSON-able value (the settings a cache folder depends on)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


@contextlib.contextmanager
def npy_writer(path: Path, shape: tuple[int, ...], dtype: Any) -> Iterator[np.ndarray]:
    """Yield a writable memory-mapped ``.npy`` array that appears at ``path`` only when complete
    (large caches are filled one image at a time instead of being held in memory)."""
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    with atomic_open(path, "w+b") as f:
        np.lib.format.write_array_header_1_0(f, header)
        offset = f.tell()
        f.truncate(offset + dtype.itemsize * int(np.prod(shape)))
        array = np.memmap(f, dtype=dtype, mode="r+", offset=offset, shape=shape)
        yield array
        array.flush()
        del array


def load_npy(path: Path, *, mmap: bool = False) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def is_complete(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()


def write_manifest(folder: Path, kind: str, settings: dict[str, Any], **extra: Any) -> None:
    """Mark ``folder`` complete; records what it holds and the settings that produced it."""
    files = {
        p.name: p.stat().st_size
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    write_json(
        folder / MANIFEST,
        {
            "kind": kind,
            "settings": settings,
            "files": files,
            "wconv_version": wconv.__version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **extra,
        },
    )


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` so that two jobs preparing the same data set (e.g. two
    Snakemake rules) do not download or write the same files at once. The lock is taken on the
    folder itself, so no lock file is left behind."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:
            # Some cluster file systems (Lustre without -o flock, some NFS setups) refuse locks;
            # atomic writes still keep every file whole, so carry on without mutual exclusion.
            log.warning("cannot lock %s (%s); run one prepare per data set at a time", folder, e)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
