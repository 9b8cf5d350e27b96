"""Loads every module that registers step types, so the registry is complete wherever it is used.

Each lifecycle adds its module here (its step types register themselves at import).
"""

from __future__ import annotations

import importlib

from definitions.steptypes import REGISTRY, StepTypeRegistry

CATALOG_MODULES: tuple[str, ...] = (
    "definitions.core_steps",
    "definitions.notify",
    "definitions.server",
    "definitions.cluster",
    "definitions.cluster_day2",
    "definitions.rollout",
    "definitions.ocm",
    "definitions.promotion",
)


def load_catalog() -> StepTypeRegistry:
    for name in CATALOG_MODULES:
        importlib.import_module(name)
    return REGISTRY
