"""One registry for every network of the study, in the spirit of timm's ``create_model``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from torch import nn

from wconv.nn import ConvFactory, conv_factory
from wconv.nn.weighted import ConvKind

Builder = Callable[..., nn.Module]
_REGISTRY: dict[str, Builder] = {}
_TASKS: dict[str, str] = {}


def register(task: str) -> Callable[[Builder], Builder]:
    """Register ``builder`` under its function name for ``task`` (classification | restoration |
    deblurring). Builders take ``conv: ConvFactory`` plus their own keyword options."""

    def wrap(builder: Builder) -> Builder:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = builder
        _TASKS[name] = task
        return builder

    return wrap


def list_models(task: str | None = None) -> list[str]:
    return sorted(n for n in _REGISTRY if task is None or _TASKS[n] == task)


def model_task(name: str) -> str:
    _check_name(name)
    return _TASKS[name]


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")


def create(
    name: str,
    *,
    conv: str | ConvFactory = "standard",
    density: float | Sequence[Any] | Mapping[int, Any] = 1.0,
    density_range: tuple[float, float] | None = None,
    **options: Any,
) -> nn.Module:
    """Build model ``name`` with ``conv`` = standard | weighted | learned (or a ``ConvFactory``).

    Remaining keyword options (``num_classes``, ``kernel_size``, ``in_channels``, ...) go to the
    builder; an option it does not take is an error listing the ones it does.
    """
    _check_name(name)
    # conv_factory checks the kind at run time (one-line error for a typo).
    kind = cast(ConvKind, conv)
    factory = conv if isinstance(conv, ConvFactory) else conv_factory(kind, density, density_range)
    builder = _REGISTRY[name]
    accepted = [p for p in inspect.signature(builder).parameters if p != "conv"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"model {name!r} does not take option(s) {unknown}; valid options: {accepted}"
        )
    return builder(conv=factory, **options)
