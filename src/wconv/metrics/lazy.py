"""Modules imported at their first use rather than at ``import wconv.metrics``.

``import piq`` costs seconds at start-up: it imports torchvision's detection models and, through
``torchvision.ops``, ``torch._dynamo``.  A training run needs piq only once it computes an image
metric, and a classification run never, so the modules that call piq name it through
:class:`LazyModule`, which imports the real module at the first attribute access (and leaves
``sys.modules`` alone until then).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``: ``LazyModule("piq").psnr`` is ``piq.psnr``, imported then."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _module(self) -> ModuleType:
        return importlib.import_module(self._name)  # a dict look-up once imported

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._module(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


piq = LazyModule("piq")
