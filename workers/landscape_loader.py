"""The one place the product reaches the local landscape: `apeiro dev ...` and `apeiro demo`.

The product (apeiro-orchestrator) and the local landscape (apeiro-landscape, landscape/pyproject.toml)
are two distributions: the wheel and the image ship the product alone. Commands that need the
landscape load it here, by name, when they run (so import-linter's contract "the product never imports
the landscape" holds, and `apeiro --help` works without it); when it is not installed they get a
:class:`LandscapeNotInstalled` that says what to install instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: What to install to get the landscape (from a checkout of the project).
INSTALL_HINT = "pip install -e './landscape[server]' from a checkout of the project (`make install` does this)"
DISTRIBUTION = "apeiro-landscape"


class LandscapeNotInstalled(RuntimeError):
    """The local landscape (or one of its dependencies) is not installed in this environment."""


def load(module: str) -> ModuleType:
    """``importlib.import_module(module)`` for a full ``landscape...`` module name, with an actionable error.

    Only `apeiro dev` and `apeiro demo` (and the tests) use the landscape."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or "?"
        if missing == "landscape" or missing.startswith("landscape."):
            what = f"the local landscape ({DISTRIBUTION}) is not installed"
        else:
            what = f"the local landscape ({DISTRIBUTION}) needs {missing!r}, which is not installed"
        raise LandscapeNotInstalled(f"{what} (only `apeiro dev` and `apeiro demo` use it): {INSTALL_HINT}") from None


def load_landscape(module: str = "") -> ModuleType:
    """Import ``landscape`` or ``landscape.<module>`` (e.g. ``"local"``, ``"process"``)."""
    return load(f"landscape.{module}" if module else "landscape")
