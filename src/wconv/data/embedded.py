"""Data sets bundled with the installed libraries, so the whole study runs offline and fast.

Both are named ``embedded`` in a study (an alias resolved by the study's task, see
``wconv.data.config``):

* ``embedded-cls`` (classification): scikit-learn's handwritten digits (1,797 images of 8x8
  pixels, 16 grey levels, 10 classes). Each image is scaled to [0, 1] (value / 16), upsampled to
  32x32 by bilinear interpolation (``torch`` ``interpolate``, ``align_corners=False``), rounded to
  uint8 and repeated over 3 channels, so the CIFAR models run on it unchanged. A fixed stratified
  20 % (seed 0) is the test set; validation is held out of the rest with ``val_fraction`` /
  ``split_seed``.
* ``embedded-den`` (denoising): the colour photographs that ship inside scikit-image (no
  download). ``astronaut`` and ``coffee`` are the fixed test images; validation images are held
  out of the others with ``val_fraction`` / ``split_seed``; patches and crops are cut as for
  DIV2K (``wconv.data.restoration``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from wconv.data import classification, restoration
from wconv.data.config import DatasetSpec, register_dataset
from wconv.data.restoration import ImageRef
from wconv.data.splits import stratified_split

DIGITS_SIZE = 32
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0

# Colour photographs of skimage.data that load from the installed package; the key seeds each
# image's patch positions. (Greyscale images and the synthetic colour wheel are left out.)
PHOTOS = {
    "astronaut": 0,
    "chelsea": 1,
    "coffee": 2,
    "rocket": 3,
    "motorcycle": 4,
    "immunohistochemistry": 5,
}
TEST_PHOTOS = ("astronaut", "coffee")


def build_digits(cfg: dict[str, Any], base: Path) -> classification.Pool:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images).float().unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(DIGITS_SIZE, DIGITS_SIZE), mode="bilinear", align_corners=False)
    images = (x * 255.0).round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1).numpy()
    labels = digits.target.astype(np.int64)
    trainval, test = stratified_split(labels, DIGITS_TEST_FRACTION, DIGITS_TEST_SEED)
    order = np.concatenate([trainval, test])  # the pool keeps the fixed test rows last
    return classification.Pool(
        images=images[order],
        labels=labels[order],
        n_test=len(test),
        class_names=[str(name) for name in digits.target_names],
    )


def _photo(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]  # the left view
    return getattr(skimage.data, name)()


def build_photos(cfg: dict[str, Any], base: Path) -> dict[str, list[ImageRef]]:
    refs = [ImageRef(name, key, lambda name=name: _photo(name)) for name, key in PHOTOS.items()]
    test = [r for r in refs if r.name in TEST_PHOTOS]
    train, val = restoration.holdout(
        [r for r in refs if r.name not in TEST_PHOTOS], cfg["val_fraction"], cfg["split_seed"]
    )
    return {"train": train, "val": val, "test": test}


register_dataset(
    DatasetSpec(
        name="embedded-cls",
        task="classification",
        kind=classification.KIND,
        defaults={"val_fraction": 0.1, "split_seed": 0},
        build=build_digits,
        description="scikit-learn digits at 32x32, 3 channels (10 classes, offline)",
        alias="embedded",
        downloads=False,
    )
)
register_dataset(
    DatasetSpec(
        name="embedded-den",
        task="denoising",
        kind=restoration.KIND,
        defaults={
            "patch_size": 64,
            "patches_per_image": 16,
            "eval_crop": 128,
            "grayscale": False,
            "val_fraction": 0.2,
            "split_seed": 0,
            "noise": None,
        },
        build=build_photos,
        description="scikit-image bundled colour photographs cut into patches (offline)",
        alias="embedded",
        downloads=False,
    )
)
