"""The run config: what one grid cell trains, validated before any work starts.

The recipes, the compute defaults and the checks live in :mod:`wconv.settings` (one validator
for every settings file, with ``params.schema.yaml``); this module is the trainer's entry to
them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wconv.settings import COMPUTE_DEFAULTS, RECIPES, resolve_run_config

__all__ = ["COMPUTE_DEFAULTS", "RECIPES", "resolve"]


def resolve(config: Mapping[str, Any]) -> dict[str, Any]:
    """Fill defaults (recipe by name, compute) and validate; raise ``UserError`` on bad values."""
    return resolve_run_config(config)
