"""One garden API client per kubeconfig, shared by the worker's gardener activities for a while.

Why: kubernetes_asyncio builds a new TLS context (with the system's CA bundle when the kubeconfig has
no CA: ~30 ms of CPU) and a new aiohttp session for every ``ApiClient``. A client per activity put
that on the worker's event loop ~40 times per cluster lifecycle; at 20 lifecycles at once it was a
third of the loop's CPU (cProfile of ``bench.cluster --levels 20``, docs/performance.md) and the loop
saturated. Now activities borrow the client of their kubeconfig (keyed by its exact text, so a
rotated kubeconfig gets a new client at once) for at most ``MAX_AGE_S``: short enough that a token
from an exec plugin in the kubeconfig (read once, when the client is made) is fetched again well
before such tokens expire. A client is closed once it has been replaced and no activity uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client, config

#: Seconds a client is handed out after it was made; then the next activity makes a new one.
MAX_AGE_S = 120.0
#: Kubeconfigs with a client at once per event loop (a worker talks to a handful of gardens).
MAX_CLIENTS = 8


@dataclass
class _Shared:
    api: client.ApiClient
    loop: asyncio.AbstractEventLoop
    born: float
    users: int = 0
    retired: bool = False


_shared: dict[tuple[int, str], _Shared] = {}


def _key(text: str) -> tuple[int, str]:
    return id(asyncio.get_running_loop()), hashlib.sha256(text.encode()).hexdigest()


async def _make(data: dict[str, Any]) -> client.ApiClient:
    cfg = type.__call__(client.Configuration)  # as new_client_from_config_dict: not a copy of the global default
    await config.load_kube_config_from_dict(data, client_configuration=cfg)
    cfg.connection_pool_maxsize = None  # shared by every activity: no cap below the worker's own
    return client.ApiClient(configuration=cfg)


def _stale(entry: _Shared, now: float) -> bool:
    return now - entry.born >= MAX_AGE_S


async def _close_if_idle(entry: _Shared) -> None:
    """Close a retired client once no activity uses it (nothing to close on a finished loop)."""
    if entry.retired and entry.users == 0 and not entry.loop.is_closed():
        await entry.api.close()


async def _retire(entry: _Shared) -> None:
    entry.retired = True
    await _close_if_idle(entry)


async def _drop_stale(now: float) -> None:
    loop = asyncio.get_running_loop()
    for key, entry in list(_shared.items()):
        if entry.loop.is_closed():
            del _shared[key]  # a finished event loop (tests): nothing left to close on it
        elif entry.loop is loop and _stale(entry, now):
            del _shared[key]
            await _retire(entry)
    mine = sorted((e.born, k) for k, e in _shared.items() if e.loop is loop)
    for _, key in mine[: max(0, len(mine) - MAX_CLIENTS + 1)]:
        await _retire(_shared.pop(key))


@contextlib.asynccontextmanager
async def shared_api(text: str, parse: Callable[[str], dict[str, Any]]) -> AsyncIterator[client.ApiClient]:
    """The API client for kubeconfig ``text`` (``parse`` turns it into a dict when a client is made)."""
    key, now = _key(text), time.monotonic()
    entry = _shared.get(key)
    if entry is None or _stale(entry, now):
        await _drop_stale(now)
        api = await _make(parse(text))
        entry = _shared.get(key)  # another activity may have made one meanwhile: use the first
        if entry is None or _stale(entry, now):
            if entry is not None:
                await _retire(entry)
            entry = _shared[key] = _Shared(api=api, loop=asyncio.get_running_loop(), born=now)
        else:
            await api.close()
    entry.users += 1
    try:
        yield entry.api
    finally:
        entry.users -= 1
        await _close_if_idle(entry)


async def close_all() -> None:
    """Close every client of this event loop (a worker shutting down, a test ending)."""
    loop = asyncio.get_running_loop()
    for key, entry in list(_shared.items()):
        if entry.loop is loop:
            del _shared[key]
            await _retire(entry)
