"""The event loop a worker process runs on: uvloop unless the operator asks for asyncio's own.

Why: a worker of the ``ocm`` queue streams blobs through TLS, and asyncio's pure-Python transports
cost it CPU per MiB that the registries on the same cores then lack. On uvloop (libuv, Cython
transports) the same ``copy_blob`` took 2.9 instead of 3.4 CPU seconds per GiB and finished in
6.3 instead of 7.0 s (median of four alternating rounds, docs/performance.md, "Seventh pass"). The
Temporal SDK only needs a standard asyncio loop; workflows run on the SDK's own deterministic loop
either way.

``APEIRO_EVENT_LOOP=asyncio`` runs asyncio's default loop instead (to rule the loop out when
troubleshooting); ``uvloop`` (the default) needs the ``uvloop`` package, a dependency on Linux and
macOS. Anything else is refused with a message that names the variable.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from workers.config import ConfigError

T = TypeVar("T")
ENV = "APEIRO_EVENT_LOOP"
CHOICES = ("uvloop", "asyncio")


def loop_name(env: Mapping[str, str] = os.environ) -> str:
    """The loop ``APEIRO_EVENT_LOOP`` asks for (default ``uvloop``)."""
    name = env.get(ENV, "").strip().lower() or "uvloop"
    if name not in CHOICES:
        raise ConfigError(f"{ENV} must be one of {', '.join(CHOICES)}, not {env.get(ENV)!r}")
    return name


def loop_factory(env: Mapping[str, str] = os.environ) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory for the chosen loop; None means asyncio's default."""
    if loop_name(env) == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        raise ConfigError(
            f"uvloop is not installed (install the package, or set {ENV}=asyncio to run on asyncio's own loop)"
        ) from None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T], env: Mapping[str, str] = os.environ) -> T:
    """``asyncio.run(coro)`` on the chosen loop. Raises ConfigError (before the coroutine starts) on a
    bad ``APEIRO_EVENT_LOOP``."""
    try:
        factory = loop_factory(env)
    except ConfigError:
        coro.close()
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)
