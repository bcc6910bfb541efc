"""Noise models: bit-reproducible noisy sets, the measured noise level, clipping, the registry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from wconv.data import load_split, noise, prepare

CLEAN = np.random.default_rng(0).integers(0, 256, (12, 3, 40, 40), dtype=np.uint8)


def _degrade(cfg: dict, split: str = "train", clean: np.ndarray = CLEAN) -> np.ndarray:
    out = np.empty(clean.shape, dtype=np.float32)
    noise.degrade(clean, noise.resolve_noise(cfg), split, out)
    return out


def test_same_seed_gives_identical_bytes():
    cfg = {"model": "gaussian", "sigma": 0.01, "seed": 3}
    assert _degrade(cfg).tobytes() == _degrade(cfg).tobytes()


def test_seed_and_split_change_the_noise():
    base = _degrade({"sigma": 0.01, "seed": 3})
    assert not np.array_equal(base, _degrade({"sigma": 0.01, "seed": 4}))
    assert not np.array_equal(base, _degrade({"sigma": 0.01, "seed": 3}, split="val"))


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.2])
def test_measured_sigma_is_within_five_percent_before_clipping(sigma):
    residual = _degrade({"sigma": sigma, "clip": False}) - CLEAN.astype(np.float32) / 255
    assert abs(residual.std() / sigma - 1) < 0.05
    assert abs(residual.mean()) < 0.05 * sigma


def test_clipping_policy():
    extremes = np.zeros((4, 3, 16, 16), dtype=np.uint8)
    extremes[:, :, 8:] = 255
    unclipped = _degrade({"sigma": 0.1, "clip": False}, clean=extremes)
    clipped = _degrade({"sigma": 0.1, "clip": True}, clean=extremes)
    assert unclipped.min() < 0 and unclipped.max() > 1
    assert clipped.min() == 0.0 and clipped.max() == 1.0
    np.testing.assert_array_equal(clipped, np.clip(unclipped, 0, 1))


def test_prepared_noisy_files_are_identical_across_roots(tmp_path):
    cfg = {"dataset": "embedded-den", "patch_size": 32, "patches_per_image": 2, "eval_crop": 64}
    a, b = prepare(cfg, tmp_path / "a"), prepare(cfg, tmp_path / "b")
    for split in ("train", "val", "test"):
        name = f"{split}_degraded.npy"
        assert (a / name).read_bytes() == (b / name).read_bytes()
    split = load_split(cfg, tmp_path / "a", "train")
    assert split.description == "gaussian sigma=0.01 clip=False"


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"model": "poisson"}, "unknown noise.model 'poisson'; valid noise models: gaussian"),
        ({"sigma": -0.1}, r"noise.sigma must be a number in \(0, 1\], got -0.1"),
        ({"sigma": 0.1, "mu": 0.0}, "unknown key noise.mu"),
        ({"clip": "yes"}, "noise.clip must be true or false"),
        ({"seed": -1}, "noise.seed must be a non-negative integer"),
    ],
)
def test_bad_noise_settings_are_rejected(cfg, message):
    with pytest.raises(ValueError, match=message):
        noise.resolve_noise(cfg)


def test_a_new_noise_model_plugs_in_by_name(monkeypatch, tmp_path):
    monkeypatch.setattr(noise, "_MODELS", dict(noise._MODELS))

    @noise.register_noise("salt")
    @dataclasses.dataclass(frozen=True)
    class Salt:
        amount: float = 0.5

        def apply(self, clean, rng):
            return np.where(rng.random(clean.shape) < self.amount, 1.0, clean).astype(np.float32)

        def describe(self):
            return f"salt amount={self.amount:g}"

    cfg = {
        "dataset": "embedded-den",
        "patch_size": 32,
        "patches_per_image": 2,
        "eval_crop": 64,
        "noise": {"model": "salt", "amount": 0.25},
    }
    prepare(cfg, tmp_path)
    split = load_split(cfg, tmp_path, "test")
    assert split.description == "salt amount=0.25"
    salted = (split.degraded == 1.0).float().mean().item()
    assert 0.2 < salted < 0.35
    with pytest.raises(ValueError, match="registered twice"):
        noise.register_noise("salt")(Salt)
