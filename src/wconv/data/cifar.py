"""CIFAR-100 (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html), python version.

The archive holds ``cifar-100-python/{train,test,meta}``: pickled dicts with ``b'data'`` (uint8
rows of 3072 values: the 1024 red, then green, then blue pixels of a 32x32 image, row-major),
``b'fine_labels'`` (0..99), ``b'coarse_labels'``, ``b'filenames'`` and ``b'batch_label'``;
``meta`` holds ``b'fine_label_names'``. We use the 100 fine labels. The official 50,000 training
images are split into train/validation (stratified, ``val_fraction`` / ``split_seed``); the
official 10,000 test images are the test set.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from wconv.data import classification
from wconv.data.classification import Pool
from wconv.data.config import (
    NETWORK_DEFAULTS,
    DatasetSpec,
    default_sources,
    downloadable_source,
    register_dataset,
)
from wconv.data.download import Source, ensure_extracted

ARCHIVE = "cifar-100-python.tar.gz"
NUM_CLASSES = 100
_SIDE = 32


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays: a pickle from a mirror or a user's file
    cannot run code. Old (numpy 1 / Python 2) module names map to the current ones."""

    def find_class(self, module: str, name: str) -> Any:
        import codecs

        from numpy._core import multiarray, numeric

        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy.core.numeric", "_frombuffer"): numeric._frombuffer,
            ("numpy._core.numeric", "_frombuffer"): numeric._frombuffer,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): codecs.encode,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR pickle")
        return allowed[(module, name)]


def read_pickle(path: Path, unpacked: Path) -> dict[bytes, Any]:
    """Load one pickle of the unpacked release folder ``unpacked`` (named in error messages)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; {unpacked} is not a complete CIFAR-100 release: delete it "
            "(or fix data.source.archive) and prepare again"
        )
    try:
        with open(path, "rb") as f:
            return _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError) as e:
        raise ValueError(
            f"{path} is not a CIFAR-100 pickle ({e}); delete {unpacked} and its archive (or fix "
            "data.source.archive) and prepare again from the official source"
        ) from None


def parse_batch(batch: dict[bytes, Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), fine labels int64 (N,)) of one train/test pickle."""
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"fine_labels"], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"CIFAR-100 {name} pickle has no {e.args[0]!r} entry") from None
    if data.ndim != 2 or data.shape[1] != 3 * _SIDE * _SIDE or len(data) != len(labels):
        raise ValueError(
            f"CIFAR-100 {name} pickle has data {data.shape} and {len(labels)} labels; expected "
            f"(N, {3 * _SIDE * _SIDE}) and N labels"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"CIFAR-100 {name} pickle has fine labels outside 0..{NUM_CLASSES - 1}")
    return data.reshape(-1, 3, _SIDE, _SIDE), labels


def read_folder(folder: Path) -> Pool:
    """Parse an unpacked archive (the folder holding ``cifar-100-python/`` or that folder)."""
    inner = folder / "cifar-100-python"
    files = inner if inner.is_dir() else folder
    train_x, train_y = parse_batch(read_pickle(files / "train", folder), "train")
    test_x, test_y = parse_batch(read_pickle(files / "test", folder), "test")
    names = [n.decode() for n in read_pickle(files / "meta", folder)[b"fine_label_names"]]
    if len(names) != NUM_CLASSES:
        raise ValueError(f"CIFAR-100 meta lists {len(names)} fine labels, expected {NUM_CLASSES}")
    return Pool(
        images=np.concatenate([train_x, test_x]),
        labels=np.concatenate([train_y, test_y]),
        n_test=len(test_y),
        class_names=names,
    )


def build(cfg: dict[str, Any], base: Path) -> Pool:
    source = Source.from_cfg(cfg["source"], cfg["source"], "data.source")
    return read_folder(ensure_extracted(source, base / "raw", ARCHIVE))


register_dataset(
    DatasetSpec(
        name="cifar100",
        task="classification",
        kind=classification.KIND,
        defaults={
            "val_fraction": 0.1,
            "split_seed": 0,
            "source": downloadable_source(default_sources()["cifar100"]) | NETWORK_DEFAULTS,
        },
        build=build,
        description="CIFAR-100 (python version), 100 fine classes, 32x32 RGB",
    )
)
