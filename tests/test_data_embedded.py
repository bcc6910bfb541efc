"""The offline data sets behind ``dataset: embedded`` (``embedded-cls``, ``embedded-den``) and the
prepare/load_split contract."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits

from wconv.data import ClassificationSplit, RestorationSplit, load_split, prepare, prepared_dir
from wconv.data.restoration import to_gray
from wconv.data.store import locked
from wconv.io import read_json

CLS = {"dataset": "embedded-cls", "val_fraction": 0.1, "split_seed": 0}
DEN = {
    "dataset": "embedded-den",
    "patch_size": 32,
    "patches_per_image": 4,
    "eval_crop": 96,
    "noise": {"model": "gaussian", "sigma": 0.05, "clip": False, "seed": 0},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    prepare(CLS, root)
    prepare(DEN, root)
    return root


def test_classification_splits_follow_the_contract(root):
    splits = {s: load_split(CLS, root, s) for s in ("train", "val", "test")}
    for split in splits.values():
        assert isinstance(split, ClassificationSplit)
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (3, 32, 32)
        assert split.labels.dtype == torch.int64 and len(split.labels) == len(split.images)
        assert split.num_classes == 10
        # Grey digits repeated over three channels.
        assert torch.equal(split.images[:, 0], split.images[:, 1])
        assert torch.equal(split.images[:, 0], split.images[:, 2])
    sizes = {s: len(v.labels) for s, v in splits.items()}
    assert sizes == {"train": 1294, "val": 144, "test": 359} and sum(sizes.values()) == 1797
    for s in ("train", "val", "test"):
        counts = torch.bincount(splits[s].labels, minlength=10).float()
        assert counts.min() > 0 and (counts.max() - counts.min()) <= 0.1 * sizes[s] + 2


def test_normalisation_statistics_come_from_the_train_split_only(root):
    train = load_split(CLS, root, "train")
    x = train.images.double() / 255
    np.testing.assert_allclose(train.mean, x.mean(dim=(0, 2, 3)).numpy(), rtol=1e-9)
    np.testing.assert_allclose(train.std, x.std(dim=(0, 2, 3), unbiased=False).numpy(), rtol=1e-6)
    test = load_split(CLS, root, "test")
    assert test.mean == train.mean and test.std == train.std
    t = test.images.double() / 255
    assert abs(t.mean().item() - train.mean[0]) > 1e-6  # really not computed on the test split


def test_digits_are_the_documented_bilinear_upsampling_with_aligned_labels(root):
    digits = load_digits()
    reference = F.interpolate(
        torch.from_numpy(digits.images).float().unsqueeze(1) / 16,
        size=(32, 32),
        mode="bilinear",
        align_corners=False,
    )
    reference = (reference * 255).round().to(torch.uint8)[:, 0].flatten(1)
    test = load_split(CLS, root, "test")
    for image, label in zip(test.images[:40], test.labels[:40], strict=True):
        match = torch.nonzero((reference == image[0].flatten()).all(dim=1)).flatten()
        assert len(match) >= 1 and (digits.target[match.numpy()] == label.item()).all()


def test_test_set_is_fixed_and_validation_follows_the_seed(tmp_path, root):
    other = {**CLS, "split_seed": 7}
    prepare(other, tmp_path)
    mine = np.load(prepared_dir(CLS, root) / "split_indices.npz")
    theirs = np.load(prepared_dir(other, tmp_path) / "split_indices.npz")
    assert np.array_equal(mine["test"], theirs["test"])
    assert not np.array_equal(mine["val"], theirs["val"])
    assert torch.equal(
        load_split(other, tmp_path, "test").images, load_split(CLS, root, "test").images
    )
    train, val, test = mine["train"], mine["val"], mine["test"]
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert len(train) + len(val) + len(test) == 1797


def test_prepare_is_idempotent(root):
    folder = prepared_dir(CLS, root)
    before = {p: p.stat().st_mtime_ns for p in folder.parent.rglob("*") if p.is_file()}
    assert prepare(CLS, root) == folder
    after = {p: p.stat().st_mtime_ns for p in folder.parent.rglob("*") if p.is_file()}
    assert before == after


def test_loading_unprepared_settings_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run `wconv data prepare embedded-den --root"):
        load_split(DEN, tmp_path, "train")
    with pytest.raises(FileNotFoundError, match=r"wconv data prepare embedded-cls"):
        load_split({**CLS, "val_fraction": 0.3}, tmp_path, "val")


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({**CLS, "val_fracton": 0.1}, "unknown key data.val_fracton"),
        (
            {"dataset": "mnist"},
            "unknown data set 'mnist'; valid data sets: embedded, cifar100, deblur, div2k",
        ),
        ({"val_fraction": 0.1}, "data.dataset is missing"),
        (
            {**CLS, "val_fraction": 1.5},
            r"data.val_fraction must be a number in \(0, 1\)",
        ),
        (
            {**CLS, "split_seed": -2},
            "data.split_seed must be a non-negative integer",
        ),
        ({**CLS, "source": {"url": "http://x"}}, "remove data.source.url"),
        ({**DEN, "patch_size": 0}, "data.patch_size must be a positive integer, got 0"),
        ({**DEN, "grayscale": "no"}, "data.grayscale must be true or false"),
        ({**DEN, "eval_crop": 1000}, r"smaller than eval_crop=1000; set data.eval_crop to at most"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, cfg, message):
    with pytest.raises(ValueError, match=message) as info:
        prepare(cfg, tmp_path)
    assert "\n" not in str(info.value)


def test_an_all_null_source_is_accepted_for_embedded_data(root):
    cfg = {**CLS, "source": {"url": None, "md5": None, "archive": None}}
    assert prepared_dir(cfg, root) == prepared_dir(CLS, root)


def test_denoising_splits_follow_the_contract(root):
    splits = {s: load_split(DEN, root, s) for s in ("train", "val", "test")}
    for split in splits.values():
        assert isinstance(split, RestorationSplit)
        assert split.clean.dtype == torch.uint8 and split.degraded.dtype == torch.float32
        assert split.clean.shape == split.degraded.shape and split.clean.shape[1] == 3
        assert split.description == "gaussian sigma=0.05 clip=False"
    assert splits["train"].clean.shape == (3 * 4, 3, 32, 32)  # 3 train photos x 4 patches
    assert splits["val"].clean.shape == (1, 3, 96, 96)
    assert splits["test"].clean.shape == (2, 3, 96, 96)
    residual = splits["train"].degraded - splits["train"].clean.float() / 255
    assert abs(residual.std().item() / 0.05 - 1) < 0.05


def test_test_crops_are_centre_crops_of_the_fixed_test_photos(root):
    test = load_split(DEN, root, "test")
    for row, photo in enumerate((skimage.data.astronaut(), skimage.data.coffee())):
        h, w = photo.shape[:2]
        top, left = (h - 96) // 2, (w - 96) // 2
        expected = torch.from_numpy(
            photo[top : top + 96, left : left + 96].transpose(2, 0, 1).copy()
        )
        assert torch.equal(test.clean[row], expected)


def test_train_patches_come_from_the_recorded_positions(root):
    folder = prepared_dir(DEN, root).parent
    positions = read_json(folder / "crops.json")
    train = load_split(DEN, root, "train")
    assert {p["image"] for p in positions["train"]}.isdisjoint({"astronaut", "coffee"})
    for row, p in enumerate(positions["train"]):
        photo = (
            skimage.data.stereo_motorcycle()[0]
            if p["image"] == "motorcycle"
            else getattr(skimage.data, p["image"])()
        )
        crop = photo[p["top"] : p["top"] + 32, p["left"] : p["left"] + 32].transpose(2, 0, 1)
        assert torch.equal(train.clean[row], torch.from_numpy(crop.copy()))


def test_noise_sweep_reuses_the_crops(root):
    crops = prepared_dir(DEN, root).parent
    stamp = (crops / "manifest.json").stat().st_mtime_ns
    louder = {**DEN, "noise": {**DEN["noise"], "sigma": 0.1}}
    folder = prepare(louder, root)
    assert folder.parent == crops and folder != prepared_dir(DEN, root)
    assert (crops / "manifest.json").stat().st_mtime_ns == stamp
    assert load_split(louder, root, "val").description == "gaussian sigma=0.1 clip=False"


def test_grayscale_mode_uses_bt601_luma(tmp_path, root):
    gray = {**DEN, "grayscale": True}
    prepare(gray, tmp_path)
    test = load_split(gray, tmp_path, "test")
    assert test.clean.shape == (2, 1, 96, 96)
    rgb = load_split(DEN, root, "test").clean[0].permute(1, 2, 0).numpy()
    assert np.array_equal(test.clean[0, 0].numpy(), to_gray(rgb)[..., 0])
    pil = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L")).astype(int)
    assert np.abs(pil - to_gray(rgb)[..., 0].astype(int)).max() <= 1


def test_a_second_preparer_waits_for_the_data_set_lock(tmp_path):
    folder = tmp_path / "embedded-cls"
    script = (
        "import sys\nfrom pathlib import Path\nfrom wconv.data.store import locked\n"
        "print('waiting', flush=True)\n"
        "with locked(Path(sys.argv[1])):\n    print('acquired', flush=True)\n"
    )
    with locked(folder):
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.5)
        assert proc.poll() is None  # blocked while we hold the lock
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.strip() == "acquired"
    assert [p for p in folder.rglob("*")] == []  # the lock leaves no file behind
