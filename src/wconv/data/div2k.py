"""DIV2K high-resolution images (Agustsson & Timofte, NTIRE 2017,
https://data.vision.ee.ethz.ch/cvl/DIV2K/).

The public release has ``DIV2K_train_HR.zip`` (``DIV2K_train_HR/0001.png`` .. ``0800.png``) and
``DIV2K_valid_HR.zip`` (``DIV2K_valid_HR/0801.png`` .. ``0900.png``); the test images' ground
truth is not public. Since the study selects the density on validation and reports test once,
the official 100 validation images are our test set and ``val_fraction`` of the 800 training
images (seeded by ``split_seed``, whole images so no patch leaks across) is our validation set.
Image counts are settings (``source.train.count`` / ``source.valid.count``), checked on parse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wconv.data import restoration
from wconv.data.config import (
    NETWORK_DEFAULTS,
    DatasetSpec,
    default_sources,
    downloadable_source,
    register_dataset,
)
from wconv.data.download import Source, ensure_extracted
from wconv.data.restoration import ImageRef

PARTS = {"train": "DIV2K_train_HR", "valid": "DIV2K_valid_HR"}


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def list_images(unpacked: Path, subdir: str, count: int, where: str) -> list[ImageRef]:
    """The numbered PNGs of one part (in ``unpacked/subdir`` or directly in ``unpacked``)."""
    inner = unpacked / subdir
    folder = inner if inner.is_dir() else unpacked
    files = sorted(folder.glob("*.png"))
    bad = [p.name for p in files if not p.stem.isdigit()]
    if bad:
        raise ValueError(
            f"unexpected file {bad[0]} in {folder}; DIV2K images are named 0001.png ..."
        )
    if len(files) != count:
        raise ValueError(
            f"found {len(files)} PNG images in {folder}, expected {count}; the archive is "
            f"incomplete (delete {unpacked} and prepare again) or set {where}.count"
        )
    return [ImageRef(p.stem, int(p.stem), lambda p=p: read_png(p)) for p in files]


def build(cfg: dict[str, Any], base: Path) -> dict[str, list[ImageRef]]:
    refs = {}
    for part, subdir in PARTS.items():
        where = f"data.source.{part}"
        source = Source.from_cfg(cfg["source"][part], cfg["source"], where)
        folder = ensure_extracted(source, base / "raw", f"{subdir}.zip")
        refs[part] = list_images(folder, subdir, cfg["source"][part]["count"], where)
    train, val = restoration.holdout(refs["train"], cfg["val_fraction"], cfg["split_seed"])
    return {"train": train, "val": val, "test": refs["valid"]}


_sources = default_sources()["div2k"]
register_dataset(
    DatasetSpec(
        name="div2k",
        task="denoising",
        kind=restoration.KIND,
        defaults={
            "patch_size": 64,
            "patches_per_image": 16,
            "eval_crop": 256,
            "grayscale": False,
            "val_fraction": 0.1,
            "split_seed": 0,
            "noise": None,
            "source": {part: downloadable_source(_sources[part]) for part in PARTS}
            | NETWORK_DEFAULTS,
        },
        build=build,
        description="DIV2K HR: 800 train (val held out) + 100 valid (our test), patches/crops",
    )
)
