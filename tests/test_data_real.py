"""CIFAR-100 and DIV2K from fixture archives in the release layouts, over real HTTP or from a
pre-downloaded path: parsing, splits, statistics, patches, crops and caching."""

from __future__ import annotations

import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from data_fixtures import RangeServer, cifar100_archive, div2k_zip, md5_of
from wconv.data import load_split, prepare, prepared_dir
from wconv.data.restoration import to_gray
from wconv.io import read_json


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifar-archive")
    arrays = cifar100_archive(folder / "cifar-100-python.tar.gz")
    return folder / "cifar-100-python.tar.gz", arrays


@pytest.fixture
def server():
    with RangeServer() as s:
        yield s


def _cifar_cfg(archive, url, **kw):
    source = {"url": url, "md5": md5_of(archive), "backoff": 0.0, "retries": 1}
    return {"dataset": "cifar100", "val_fraction": 0.2, "split_seed": 0, "source": source, **kw}


def test_cifar100_download_parse_and_split(cifar, server, tmp_path):
    archive, arrays = cifar
    server.files["/kriz/cifar-100-python.tar.gz"] = archive.read_bytes()
    cfg = _cifar_cfg(archive, server.url("/kriz/cifar-100-python.tar.gz"))
    folder = prepare(cfg, tmp_path)
    assert folder == prepared_dir(cfg, tmp_path)
    splits = {s: load_split(cfg, tmp_path, s) for s in ("train", "val", "test")}
    # The official test set is the test split, unchanged and in order.
    assert torch.equal(splits["test"].images, torch.from_numpy(arrays["test_images"]))
    assert torch.equal(splits["test"].labels, torch.from_numpy(arrays["test_labels"]))
    # Train and validation partition the official train set, 1 of 5 images per class held out.
    indices = np.load(folder / "split_indices.npz")
    train, val = indices["train"], indices["val"]
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(500))
    assert torch.equal(splits["val"].images, torch.from_numpy(arrays["train_images"][val]))
    assert np.bincount(arrays["train_labels"][val], minlength=100).tolist() == [1] * 100
    assert splits["train"].num_classes == 100 and splits["train"].images.shape[1:] == (3, 32, 32)
    x = arrays["train_images"][train].astype(np.float64) / 255
    np.testing.assert_allclose(splits["val"].mean, x.mean(axis=(0, 2, 3)), rtol=1e-9)
    np.testing.assert_allclose(splits["val"].std, x.std(axis=(0, 2, 3)), rtol=1e-6)
    pool = read_json(folder.parent / "manifest.json")
    assert pool["class_names"][:2] == ["class000", "class001"]
    # Idempotent and cached: no second download, and a new split reuses the parsed arrays.
    prepare(cfg, tmp_path)
    other = prepare({**cfg, "split_seed": 1}, tmp_path)
    assert other.parent == folder.parent and other != folder
    assert len(server.requests) == 1


def test_cifar100_from_a_predownloaded_archive_or_unpacked_folder(cifar, tmp_path):
    archive, _ = cifar
    cfg = _cifar_cfg(archive, "http://127.0.0.1:9/unused")
    cfg["source"]["archive"] = str(archive)
    prepare(cfg, tmp_path / "a")
    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive) as tf:
        tf.extractall(unpacked, filter="data")
    by_folder = _cifar_cfg(archive, None)
    by_folder["source"]["archive"] = str(unpacked / "cifar-100-python")
    prepare(by_folder, tmp_path / "b")
    for split in ("train", "val", "test"):
        a, b = load_split(cfg, tmp_path / "a", split), load_split(by_folder, tmp_path / "b", split)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def _bad_cifar(path, train_batch):
    with tarfile.open(path, "w:gz") as tf:
        payload = pickle.dumps(train_batch, protocol=2)
        info = tarfile.TarInfo("cifar-100-python/train")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    return path


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({b"data": np.zeros((2, 3072), np.uint8)}, "no b'fine_labels' entry"),
        ({b"data": np.zeros((2, 100), np.uint8), b"fine_labels": [0, 1]}, r"expected \(N, 3072\)"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [100]}, "outside 0..99"),
        ({b"data": _RunsCode()}, r"refusing to load (__builtin__|builtins)\.print"),
    ],
)
def test_malformed_cifar_pickles_are_rejected(tmp_path, batch, message):
    archive = _bad_cifar(tmp_path / "cifar-100-python.tar.gz", batch)
    cfg = _cifar_cfg(archive, None)
    cfg["source"]["archive"] = str(archive)
    with pytest.raises(ValueError, match=message):
        prepare(cfg, tmp_path / "data")


@pytest.fixture(scope="module")
def div2k(tmp_path_factory):
    folder = tmp_path_factory.mktemp("div2k-archives")
    train = div2k_zip(folder / "DIV2K_train_HR.zip", "DIV2K_train_HR", range(1, 5), seed=1)
    valid = div2k_zip(folder / "DIV2K_valid_HR.zip", "DIV2K_valid_HR", range(801, 803), seed=2)
    return folder, {**train, **valid}


def _div2k_cfg(folder, **kw):
    source = {
        part: {
            "archive": str(folder / f"DIV2K_{part}_HR.zip"),
            "md5": md5_of(folder / f"DIV2K_{part}_HR.zip"),
            "count": count,
        }
        for part, count in (("train", 4), ("valid", 2))
    }
    return {
        "dataset": "div2k",
        "patch_size": 16,
        "patches_per_image": 3,
        "eval_crop": 40,
        "val_fraction": 0.25,
        "split_seed": 0,
        "noise": {"sigma": 0.02, "seed": 1},
        "source": source,
        **kw,
    }


def test_div2k_patches_crops_and_release_split(div2k, tmp_path):
    folder, images = div2k
    cfg = _div2k_cfg(folder)
    prepare(cfg, tmp_path)
    splits = {s: load_split(cfg, tmp_path, s) for s in ("train", "val", "test")}
    assert splits["train"].clean.shape == (9, 3, 16, 16)  # 3 train images x 3 patches
    assert splits["val"].clean.shape == (1, 3, 40, 40)
    assert splits["test"].clean.shape == (2, 3, 40, 40)
    positions = read_json(prepared_dir(cfg, tmp_path).parent / "crops.json")
    assert [p["image"] for p in positions["test"]] == ["0801", "0802"]  # official valid = test
    held = {p["image"] for p in positions["val"]}
    assert len(held) == 1 and held.isdisjoint({p["image"] for p in positions["train"]})
    for split in ("train", "val", "test"):
        size = 16 if split == "train" else 40
        for row, p in enumerate(positions[split]):
            crop = images[p["image"]][p["top"] : p["top"] + size, p["left"] : p["left"] + size]
            assert torch.equal(
                splits[split].clean[row], torch.from_numpy(crop.transpose(2, 0, 1).copy())
            )
    assert positions["test"][0] == {"image": "0801", "top": (72 - 40) // 2, "left": (90 - 40) // 2}
    # Patch positions vary within an image and are drawn from the whole image.
    assert len({(p["top"], p["left"]) for p in positions["train"]}) == 9
    residual = splits["train"].degraded - splits["train"].clean.float() / 255
    assert abs(residual.std().item() / 0.02 - 1) < 0.05


def test_div2k_is_reproducible_and_grayscale_works(div2k, tmp_path):
    folder, _ = div2k
    cfg = _div2k_cfg(folder)
    a, b = prepare(cfg, tmp_path / "a"), prepare(cfg, tmp_path / "b")
    for name in ("train_clean.npy", "val_clean.npy", "test_clean.npy"):
        assert (a.parent / name).read_bytes() == (b.parent / name).read_bytes()
    for name in ("train_degraded.npy", "test_degraded.npy"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    gray = {**cfg, "grayscale": True}
    prepare(gray, tmp_path / "a")
    g = load_split(gray, tmp_path / "a", "test").clean
    rgb = load_split(cfg, tmp_path / "a", "test").clean
    assert g.shape == (2, 1, 40, 40)
    assert np.array_equal(g[1, 0].numpy(), to_gray(rgb[1].permute(1, 2, 0).numpy())[..., 0])


def test_div2k_downloads_both_parts(div2k, server, tmp_path):
    folder, _ = div2k
    cfg = _div2k_cfg(folder)
    for part in ("train", "valid"):
        path = folder / f"DIV2K_{part}_HR.zip"
        server.files[f"/DIV2K/{path.name}"] = path.read_bytes()
        cfg["source"][part] = {
            **cfg["source"][part],
            "archive": None,
            "url": server.url(f"/DIV2K/{path.name}"),
        }
    cfg["source"]["backoff"] = 0.0
    by_path = prepare(_div2k_cfg(folder), tmp_path / "by-path")
    downloaded = prepare(cfg, tmp_path / "downloaded")
    assert len(server.requests) == 2
    # Same archives (same md5) give the same cache folder name and the same bytes.
    assert by_path.relative_to(tmp_path / "by-path") == downloaded.relative_to(
        tmp_path / "downloaded"
    )
    assert (by_path / "train_degraded.npy").read_bytes() == (
        downloaded / "train_degraded.npy"
    ).read_bytes()


def test_div2k_image_count_is_checked(div2k, tmp_path):
    folder, _ = div2k
    cfg = _div2k_cfg(folder)
    cfg["source"]["train"]["count"] = 800
    with pytest.raises(
        ValueError, match=r"found 4 PNG images .* expected 800; .*data\.source\.train\.count"
    ):
        prepare(cfg, tmp_path)


def test_patch_larger_than_an_image_is_a_clear_error(div2k, tmp_path):
    folder, _ = div2k
    with pytest.raises(
        ValueError, match=r"smaller than patch_size=100; set data\.patch_size to at most 72"
    ):
        prepare(_div2k_cfg(folder, patch_size=100), tmp_path)
