"""Loads the local landscape (a separate distribution) for `apeiro dev ...` and `apeiro demo` only.

The product never imports ``landscape`` at module level: a production install (the image, a plain
``pip install apeiro-orchestrator``) has no landscape, and every other command must work there.
"""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install -e ./landscape (apeiro-landscape)"


class LandscapeNotInstalled(Exception):
    """The landscape, or one of its dependencies, cannot be imported; the message says what to install."""


def load(module: str) -> ModuleType:
    """``importlib.import_module(module)`` for a ``landscape.*`` module, with an actionable error."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        if missing == "landscape" or missing.startswith("landscape."):
            what = "the local landscape is not installed"
        else:
            what = f"the local landscape needs {missing}, which is not installed"
        raise LandscapeNotInstalled(f"{what} (only `apeiro dev` and `apeiro demo` use it): {INSTALL_HINT}") from None
