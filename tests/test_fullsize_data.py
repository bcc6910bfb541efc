"""Full-size CIFAR-100 in the release format, served over loopback HTTP, through `data prepare`.

No machine here reaches the data hosts, so the archive is generated (synthetic pixels, the real
pickle layout and size: 50,000 + 10,000 images) by tests/data_fixtures.py and served from
127.0.0.1 with Range support. benchmarks/prepare_fullsize.py measures time and memory of the same.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data_fixtures import RangeServer, cifar100_archive, md5_of
from wconv.data import load_split, prepared_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fullsize_cifar(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifar-fullsize")
    archive = folder / "cifar-100-python.tar.gz"
    # Level 1: the pixels are random, so a higher level only costs generation time.
    arrays = cifar100_archive(archive, train_per_class=500, test_per_class=100, compresslevel=1)
    return archive, arrays


def test_fullsize_cifar100_prepare_gives_45000_5000_10000(fullsize_cifar, tmp_path):
    archive, arrays = fullsize_cifar
    with RangeServer() as server:
        server.files["/kriz/cifar-100-python.tar.gz"] = archive.read_bytes()
        source = {"url": server.url("/kriz/cifar-100-python.tar.gz"), "md5": md5_of(archive)}
        cfg = {"dataset": "cifar100", "val_fraction": 0.1, "split_seed": 0, "source": source}
        result = subprocess.run(
            [sys.executable, "-m", "wconv.cli", "data", "prepare", "cifar100",
             "--root", str(tmp_path), "--set", f"source.url={source['url']}",
             "--set", f"source.md5={source['md5']}"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert Path(result.stdout.strip().splitlines()[-1]) == prepared_dir(cfg, tmp_path)
    splits = {s: load_split(cfg, tmp_path, s) for s in ("train", "val", "test")}
    assert {s: len(v.labels) for s, v in splits.items()} == {
        "train": 45_000,
        "val": 5_000,
        "test": 10_000,
    }
    assert splits["train"].images.shape[1:] == (3, 32, 32)
    # The official test set is the test split, in order; the validation split holds 50 per class.
    assert torch.equal(splits["test"].labels, torch.from_numpy(arrays["test_labels"]))
    assert torch.equal(splits["test"].images[-1], torch.from_numpy(arrays["test_images"][-1]))
    assert torch.bincount(splits["val"].labels, minlength=100).tolist() == [50] * 100
