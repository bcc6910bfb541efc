"""Images blurred by a static, spatially-varying PSF, plus noise: the 2D task of the CoordGate
study (Howard, Norreys & Döpp, arXiv 2401.04680, whose microscopy data and PSF are not public).

**Samples.**  Every sample is one full *field* (the sensor frame, ``field_size`` px square) cut from
a source image at a seeded random position (train fields also get a random flip / quarter turn).
The PSF is tied to the frame, never to the image content, so models must learn *where* each blur
applies; fields must therefore not be cropped further for training.

**PSF field.**  With ``ρ(p) ∈ [0, 1]`` the distance of pixel ``p`` from the frame centre divided by
the centre-to-corner distance, the blur width is ``σ(p) = σ_c + (σ_e − σ_c) · ρ(p)^power``
(a defocus that grows towards the edges, like field curvature).  Two PSF models:

* ``radial``: an isotropic Gaussian of width ``σ(p)``;
* ``astigmatic``: a Gaussian of width ``σ(p)`` along the radial direction ``θ(p)`` and ``σ_c``
  across it, so spots stretch and turn with their position (sagittal astigmatism).

**Efficient blur.**  The field is approximated by a few basis PSFs ``h_b`` with spatial weight
maps ``w_b`` (PSF interpolation, Nagy & O'Leary 1998)::

    y(p) = Σ_b w_b(p) · (h_b * x)(p) + n(p)

``radial``: ``h_b`` are Gaussians at ``levels`` widths evenly spaced in [σ_c, σ_e] and ``w_b`` the
linear-interpolation (hat) weights of ``σ(p)`` between them; ``astigmatic``: one isotropic ``σ_c``
Gaussian plus ``(levels − 1) × orientations`` elongated ones, weighted by the product of the hat
weights in width and in (periodic) angle.  The weights sum to 1 at every pixel, so flat regions
stay flat.  Each convolution is an FFT product on the field plus a margin of half a PSF taken from
the source image (light from outside the frame blurs in; no artificial border).  ``n`` comes from
the shared noise models (:mod:`wconv.data.noise`, additive Gaussian by default).

**Sources.**  ``embedded``: greyscale versions of the images bundled inside scikit-image (no
download; the microscopy ones are ``cell``, ``immunohistochemistry``, ``retina``,
``hubble_deep_field``), split by image between train / val / test; ``folder``: every image in one
folder per split; ``div2k``: the DIV2K HR images with the denoising study's split and download
cache (``<root>/div2k``, :mod:`wconv.data.div2k`; the ``div2k:`` section overrides its settings,
e.g. ``source.train.archive``).  Field ``i`` of a split comes from image ``i mod n``.

Reproducible bit for bit: field ``i``'s crop from ``np.random.default_rng([split_seed, split,
i])``, its noise from ``[noise.seed, split, i]``, float64 FFTs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wconv import settings
from wconv.data.config import DatasetKind, DatasetSpec, register_dataset, resolve
from wconv.data.noise import STREAMS, make_noise, resolve_noise
from wconv.data.restoration import to_gray
from wconv.data.splits import SPLITS, RestorationSplit, check_split
from wconv.data.store import digest, is_complete, load_npy, locked, save_npy, write_manifest
from wconv.io import read_json

EMBEDDED_IMAGES: tuple[str, ...] = (
    "astronaut", "brick", "camera", "cat", "cell", "clock", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text",
)  # fmt: skip
"""scikit-image sample images that ship inside the wheel (``skimage.data`` loads them offline)."""

Loader = Callable[[], np.ndarray]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

DEFAULTS: dict[str, Any] = {
    "source": "embedded",
    "images": {
        "train": [
            "astronaut",
            "brick",
            "camera",
            "clock",
            "coffee",
            "grass",
            "gravel",
            "hubble_deep_field",
            "moon",
            "rocket",
        ],
        "val": ["coins", "retina"],
        "test": ["cell", "immunohistochemistry"],
    },
    "folders": {"train": None, "val": None, "test": None},
    "div2k": {},
    "field_size": 128,
    "fields": {"train": 256, "val": 32, "test": 32},
    "augment": True,
    "psf": {
        "model": "radial",
        "size": 21,
        "sigma_center": 0.8,
        "sigma_edge": 3.0,
        "power": 2.0,
        "levels": 6,
        "orientations": 8,
    },
    "noise": {"model": "gaussian", "sigma": 0.01, "clip": False, "seed": 0},
    "split_seed": 0,
}


# --------------------------------------------------------------------------- configuration


def resolve_deblur(cfg: Mapping[str, Any] | None, where: str = "data") -> dict[str, Any]:
    """``cfg`` merged over :data:`DEFAULTS` and checked (``$defs/deblur_data`` of the settings
    schema, then what needs code: bundled images, PSF size); unknown keys and bad values raise
    ``ValueError`` naming the key from ``where`` on.  A ``dataset`` key is left out: the
    registry (``wconv.data.config``) checks the name, and the folder digest never covers it."""
    user = {k: v for k, v in (cfg or {}).items() if k != "dataset"}
    out = settings.fill(DEFAULTS, user)
    settings.check(out, "deblur_data", where)
    if out["source"] == "div2k":
        resolve({"dataset": "div2k", **out["div2k"]}, f"{where}.div2k")  # checks the overrides
    for split in SPLITS:
        if out["source"] == "embedded":
            bad = [n for n in out["images"][split] if n not in EMBEDDED_IMAGES]
            if bad:
                raise ValueError(
                    f"{where}.images.{split}: {bad} are not bundled scikit-image images; use "
                    f"some of {list(EMBEDDED_IMAGES)}"
                )
        elif out["source"] == "folder":
            out["folders"][split] = str(Path(out["folders"][split]).expanduser().resolve())
    _check_psf_size(out["psf"], f"{where}.psf")
    out["noise"] = resolve_noise(out["noise"], f"{where}.noise")
    return out


def check_psf(psf: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for a PSF section that cannot describe a field."""
    settings.check(psf, "psf", "data.psf")
    _check_psf_size(psf, "data.psf")


def _check_psf_size(psf: Mapping[str, Any], where: str) -> None:
    size, sc, se = psf["size"], psf["sigma_center"], psf["sigma_edge"]
    if 3 * max(sc, se) > size // 2 + 1:
        raise ValueError(
            f"{where}.size {size} truncates a sigma of {max(sc, se)} px; use size >= "
            f"{2 * math.ceil(3 * max(sc, se)) + 1}"
        )


# --------------------------------------------------------------------------- PSF field


def gaussian_kernel(size: int, sigma_major: float, sigma_minor: float, angle: float) -> np.ndarray:
    """A ``size × size`` Gaussian (unit sum) with widths ``sigma_major`` along ``angle`` (radians
    from the column axis towards the row axis) and ``sigma_minor`` across it."""
    offsets = np.arange(size, dtype=np.float64) - size // 2
    rows, cols = np.meshgrid(offsets, offsets, indexing="ij")
    along = cols * math.cos(angle) + rows * math.sin(angle)
    across = -cols * math.sin(angle) + rows * math.cos(angle)
    kernel = np.exp(-(along**2) / (2 * sigma_major**2) - across**2 / (2 * sigma_minor**2))
    return kernel / kernel.sum()


def _hat_weights(t: np.ndarray, count: int, periodic: bool = False) -> np.ndarray:
    """Linear-interpolation weights ``(count, *t.shape)`` of positions ``t`` on nodes 0…count-1
    (``periodic``: node ``count`` is node 0)."""
    weights = np.zeros((count, *t.shape))
    low = np.floor(t).astype(np.int64)
    frac = t - low
    if periodic:
        low %= count
        high = (low + 1) % count
    else:
        low = np.clip(low, 0, count - 2)
        frac = t - low
        high = low + 1
    for node in range(count):
        weights[node] += np.where(low == node, 1 - frac, 0) + np.where(high == node, frac, 0)
    return weights


def psf_field(psf: Mapping[str, Any], field_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Basis PSFs ``(B, k, k)`` and weight maps ``(B, S, S)`` (float64) of the module docstring."""
    check_psf(psf)
    size, sc, se = psf["size"], float(psf["sigma_center"]), float(psf["sigma_edge"])
    levels = psf["levels"]
    axis = np.linspace(-1.0, 1.0, field_size)
    v, u = np.meshgrid(axis, axis, indexing="ij")  # v: rows, u: columns
    rho = np.sqrt(u**2 + v**2) / math.sqrt(2.0)
    level_t = rho ** float(psf["power"]) * (levels - 1)  # σ(p) in units of the level spacing
    level_w = _hat_weights(level_t, levels)
    sigmas = np.linspace(sc, se, levels)
    if psf["model"] == "radial":
        basis = [gaussian_kernel(size, s, s, 0.0) for s in sigmas]
        return np.stack(basis), level_w
    count = psf["orientations"]
    theta = np.mod(np.arctan2(v, u), math.pi)
    angle_w = _hat_weights(theta / (math.pi / count), count, periodic=True)
    basis = [gaussian_kernel(size, sc, sc, 0.0)]
    weights = [level_w[0]]
    for level in range(1, levels):
        for a in range(count):
            basis.append(gaussian_kernel(size, sigmas[level], sc, a * math.pi / count))
            weights.append(level_w[level] * angle_w[a])
    return np.stack(basis), np.stack(weights)


def sample_psfs(cfg: Mapping[str, Any], grid: int = 3) -> np.ndarray:
    """The local PSFs ``Σ_b w_b(p) h_b`` at a ``grid × grid`` lattice of field positions (rows
    first), float32 ``(grid², k, k)`` — e.g. to initialise MultiWienerNet's PSF bank as the
    original does with PSFs measured across the field."""
    cfg = resolve_deblur(cfg)
    basis, weights = psf_field(cfg["psf"], cfg["field_size"])
    positions = np.linspace(0, cfg["field_size"] - 1, grid).round().astype(int)
    local = [np.tensordot(weights[:, r, c], basis, axes=1) for r in positions for c in positions]
    return np.stack(local).astype(np.float32)


def blur_fields(scenes: np.ndarray, basis: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``Σ_b w_b · (h_b * x)`` for scenes ``(N, S + 2m, S + 2m)`` with ``m = k // 2`` (the field
    and its margin); returns the ``(N, S, S)`` field, float64.  The circular FFT product wraps only
    inside the margin, which is cropped away."""
    size = basis.shape[-1]
    margin = size // 2
    side = scenes.shape[-1]
    field = side - 2 * margin
    if scenes.shape[-2] != side or weights.shape[-1] != field:
        raise ValueError(
            f"blur_fields: scenes {scenes.shape} must be square with a {margin}-px margin around "
            f"the {weights.shape[-1]}-px field"
        )
    canvas = np.zeros((len(basis), side, side))
    canvas[:, :size, :size] = basis
    canvas = np.roll(canvas, (-margin, -margin), axis=(1, 2))  # PSF centre on the origin
    transfer = np.fft.rfft2(canvas)
    spectrum = np.fft.rfft2(np.asarray(scenes, dtype=np.float64))
    out = np.zeros((len(scenes), field, field))
    crop = (slice(None), slice(margin, margin + field), slice(margin, margin + field))
    for h, w in zip(transfer, weights, strict=True):
        out += w * np.fft.irfft2(spectrum * h, s=(side, side))[crop]
    return out


# --------------------------------------------------------------------------- source images


def _grey(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W) greyscale of an 8-bit grey or RGB(A) image (BT.601 luma, as for denoising)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected 8-bit images, got dtype {image.dtype}")
    return image if image.ndim == 2 else to_gray(image[..., :3])[..., 0]


def _sources(cfg: Mapping[str, Any], split: str, root: Path) -> list[tuple[str, Loader]]:
    """(name, loader) of every source image of ``split``; images are decoded only when cut."""
    if cfg["source"] == "embedded":
        import skimage.data

        return [(n, getattr(skimage.data, n)) for n in cfg["images"][split]]
    if cfg["source"] == "div2k":
        spec, div2k = resolve({"dataset": "div2k", **cfg["div2k"]})
        refs = spec.build_data(div2k, Path(root) / spec.name)[split]  # shared with denoising
        return [(ref.name, ref.load) for ref in refs]
    import skimage.io

    folder = Path(cfg["folders"][split])
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"data.folders.{split}: no images ({IMAGE_SUFFIXES}) in {folder}")
    return [(p.name, functools.partial(skimage.io.imread, p)) for p in files]


def _cut_scenes(
    sources: list[tuple[str, Loader]], count: int, side: int, augment: bool, seeds: list[int]
) -> np.ndarray:
    """``count`` square crops of ``side`` px; field ``i`` comes from image ``i mod n`` at a
    position drawn from ``default_rng([*seeds, i])`` (so each image is decoded once)."""
    scenes = np.empty((count, side, side), dtype=np.uint8)
    for k, (name, load) in enumerate(sources[:count]):
        image = _grey(load())
        if min(image.shape) < side:
            raise ValueError(
                f"image {name} ({image.shape[0]}x{image.shape[1]}) is smaller than field_size + "
                f"PSF margin = {side} px; lower data.field_size or drop the image"
            )
        for i in range(k, count, len(sources)):
            rng = np.random.default_rng([*seeds, i])
            top = int(rng.integers(0, image.shape[0] - side + 1))
            left = int(rng.integers(0, image.shape[1] - side + 1))
            crop = image[top : top + side, left : left + side]
            if augment:
                crop = np.rot90(crop, int(rng.integers(0, 4)))
                crop = crop[:, ::-1] if rng.integers(0, 2) else crop
            scenes[i] = crop
    return scenes


# --------------------------------------------------------------------------- prepare / load


def describe(cfg: Mapping[str, Any]) -> str:
    psf = cfg["psf"]
    noise = make_noise(cfg["noise"]).describe()
    return (
        f"{psf['model']} blur sigma {psf['sigma_center']:g}->{psf['sigma_edge']:g} px "
        f"(power {psf['power']:g}, {psf['size']} px PSFs) + {noise}"
    )


def deblur_folder(cfg: Mapping[str, Any], root: Path) -> Path:
    """Where :func:`prepare_deblur` puts the arrays of ``cfg`` (named by its settings digest)."""
    return Path(root) / f"deblur-{digest(resolve_deblur(cfg))}"


def prepare_deblur(cfg: Mapping[str, Any], root: Path) -> Path:
    """Build the blurred/clean fields of every split into ``root/deblur-<digest>`` and return it.

    Idempotent (a folder with its manifest is reused); files are written atomically and the
    manifest last, under a lock, so concurrent jobs are safe.  Per split: ``<split>_clean.npy``
    uint8 ``(N, 1, S, S)``, ``<split>_degraded.npy`` float32; plus ``psf_basis.npy`` and
    ``psf_weights.npy`` (the field of the module docstring).
    """
    cfg = resolve_deblur(cfg)
    folder = deblur_folder(cfg, root)
    with locked(folder):
        if is_complete(folder):
            return folder
        basis, weights = psf_field(cfg["psf"], cfg["field_size"])
        margin = basis.shape[-1] // 2
        side = cfg["field_size"] + 2 * margin
        noise = make_noise(cfg["noise"])
        for split in SPLITS:
            sources = _sources(cfg, split, root)
            augment = cfg["augment"] and split == "train"
            seeds = [cfg["split_seed"], STREAMS[split]]
            scenes = _cut_scenes(sources, cfg["fields"][split], side, augment, seeds)
            clean = scenes[:, margin:-margin, margin:-margin][:, None].copy()
            degraded = np.empty(clean.shape, dtype=np.float32)
            for start in range(0, len(scenes), 64):  # bounded memory for large sets
                chunk = scenes[start : start + 64].astype(np.float64) / 255.0
                blurred = blur_fields(chunk, basis, weights).astype(np.float32)
                for j, image in enumerate(blurred, start):
                    field_rng = np.random.default_rng([cfg["noise"]["seed"], STREAMS[split], j])
                    degraded[j] = noise.apply(image[None], field_rng)
            save_npy(folder / f"{split}_clean.npy", clean)
            save_npy(folder / f"{split}_degraded.npy", degraded)
        save_npy(folder / "psf_basis.npy", basis)
        save_npy(folder / "psf_weights.npy", weights)
        write_manifest(folder, "deblur", cfg, description=describe(cfg))
    return folder


def load_deblur_split(cfg: Mapping[str, Any], root: Path, split: str) -> RestorationSplit:
    """One prepared split as a :class:`~wconv.data.splits.RestorationSplit` (``degraded`` =
    blurred + noisy field).  Raises ``FileNotFoundError`` with the fix if it is not prepared."""
    check_split(split)
    folder = deblur_folder(cfg, root)
    if not is_complete(folder):
        raise FileNotFoundError(
            f"deblurring data not prepared in {folder}; run prepare_deblur(cfg, root) "
            "(`wconv data prepare ...`) first"
        )
    return RestorationSplit(
        clean=torch.from_numpy(load_npy(folder / f"{split}_clean.npy")),
        degraded=torch.from_numpy(load_npy(folder / f"{split}_degraded.npy")),
        description=read_json(folder / "manifest.json")["description"],
    )


# --------------------------------------------------------------------------- registration

KIND = DatasetKind(
    settings=lambda spec, user, where: resolve_deblur(user, where),
    prepared_dir=lambda spec, cfg, root: deblur_folder(cfg, root),
    prepare=lambda spec, cfg, root: prepare_deblur(cfg, root),
    load=lambda spec, cfg, root, split: load_deblur_split(cfg, root, split),
)
"""Blurred fields with their clean targets, in one folder ``deblur-<settings digest>``."""

register_dataset(
    DatasetSpec(
        name="deblur",
        task="deblurring",
        kind=KIND,
        description="fields blurred by a spatially-varying PSF plus noise (CoordGate study)",
        defaults=DEFAULTS,
    )
)
