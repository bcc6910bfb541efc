"""Noise models that turn clean images into the noisy inputs of the denoising study.

Models are registered by name (``noise.model`` in params.yaml); each is a frozen dataclass whose
fields, with their defaults, are the model's parameters, so a new model is one decorated class.
The values of the shared keys and of the built-in models' parameters are checked by the settings
schema (``$defs/noise`` of ``wconv/params.schema.yaml``); a new model checks its own.
Every image gets its own generator seeded from ``(noise.seed, split, image index)``: the noisy set
is identical bit for bit on every run and machine, and does not depend on the order in which
images are processed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from wconv import settings

# Generator streams per split, so the three splits never share noise.
STREAMS = {"train": 0, "val": 1, "test": 2}


class NoiseModel(Protocol):
    def apply(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Degrade one float32 image (C, H, W) on [0, 1]; return float32 of the same shape."""
        ...

    def describe(self) -> str: ...


_MODELS: dict[str, type] = {}


def register_noise(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        if name in _MODELS:
            raise ValueError(f"noise model {name!r} is registered twice")
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"noise model {name!r} must be a dataclass")
        _MODELS[name] = cls
        return cls

    return wrap


def list_noise_models() -> list[str]:
    return sorted(_MODELS)


@register_noise("gaussian")
@dataclasses.dataclass(frozen=True)
class GaussianNoise:
    """Additive white Gaussian noise: ``y = x + sigma * z`` with ``z ~ N(0, 1)`` drawn independently
    per pixel and channel and ``x`` on [0, 1]; with ``clip`` the result is clipped to [0, 1].
    The weighted-convolution paper (arXiv 2505.24558, DIV2K experiments) uses ``sigma = 0.01``
    (an input PSNR of about 40 dB); unclipped noise keeps the residual exactly Gaussian."""

    sigma: float = 0.01
    clip: bool = False

    def apply(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noisy = clean + np.float32(self.sigma) * rng.standard_normal(clean.shape, dtype=np.float32)
        return np.clip(noisy, 0.0, 1.0, out=noisy) if self.clip else noisy

    def describe(self) -> str:
        return f"gaussian sigma={self.sigma:g} clip={self.clip}"


def resolve_noise(user: Mapping[str, Any] | None, where: str = "noise") -> dict[str, Any]:
    """Complete a ``noise:`` section with the chosen model's defaults; unknown keys are errors."""
    if user is not None:
        settings.check(user, "noise", where)
    user = dict(user or {})
    model = user.pop("model", "gaussian")
    if model not in _MODELS:
        raise ValueError(
            f"unknown {where}.model {model!r}; valid noise models: {', '.join(list_noise_models())}"
        )
    seed = user.pop("seed", 0)
    fields = {f.name: f.default for f in dataclasses.fields(_MODELS[model])}
    unknown = sorted(set(user) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown key {where}.{unknown[0]} for noise model {model!r}; "
            f"valid keys: model, seed, {', '.join(fields)}"
        )
    resolved = {"model": model, "seed": seed, **fields, **user}
    make_noise(resolved)  # a new model may check its values when it is made
    return resolved


def make_noise(cfg: Mapping[str, Any]) -> NoiseModel:
    params = {k: v for k, v in cfg.items() if k not in ("model", "seed")}
    return _MODELS[cfg["model"]](**params)


def degrade(clean: np.ndarray, cfg: Mapping[str, Any], split: str, out: np.ndarray) -> None:
    """Write the degraded version of uint8 images ``clean`` (N, C, H, W) into ``out`` (float32 or
    float16: the noise is computed in float32 either way and rounded once on assignment)."""
    model = make_noise(cfg)
    for i in range(len(clean)):
        rng = np.random.default_rng([cfg["seed"], STREAMS[split], i])
        x = np.asarray(clean[i], dtype=np.float32) / np.float32(255.0)
        out[i] = model.apply(x, rng)
