"""The gateway's Temporal client: connected lazily, reconnected after failures, bounded retries.

A webhook sender waits for our answer, so the gateway must not hang in Temporal's default retry
loop (10 s): it answers 503 with Retry-After quickly and the sender retries the same delivery.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RetryConfig

from definitions import search_attributes as sa
from triggers.dispatch import RETRY_AFTER_SECONDS
from triggers.events import HookError
from workers.config import ConfigError, TemporalSettings, data_converter, search_attributes_registered

GATEWAY_RETRY = RetryConfig(
    initial_interval_millis=100, max_interval_millis=1000, max_elapsed_time_millis=3000, max_retries=3
)


class TemporalConnection:
    """Hands out a connected client; ``settings`` is read on each (re)connect."""

    def __init__(
        self, settings: Callable[[], TemporalSettings] = TemporalSettings.from_env, client: Client | None = None
    ) -> None:
        self.settings = settings
        self._client = client
        self._lock = asyncio.Lock()
        self.search_attributes_ok: bool | None = None
        self._ready_at: float | None = None

    @property
    def namespace(self) -> str:
        if self._client is not None:
            return self._client.namespace
        try:
            return self.settings().namespace
        except ConfigError:
            return os.environ.get("TEMPORAL_NAMESPACE", "default")

    async def get(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await Client.connect(
                        **self.settings().connect_options(),
                        data_converter=data_converter(),
                        retry_config=GATEWAY_RETRY,
                        connect_timeout=timedelta(seconds=3),
                    )
                except (RuntimeError, ConfigError, OSError) as exc:
                    raise HookError(
                        503,
                        f"Temporal is not reachable ({exc}); nothing was started or lost: retry "
                        "the same delivery later",
                        outcome="unavailable",
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                    ) from None
                self.search_attributes_ok = await _attrs_registered(self._client)
            return self._client

    async def ready(self, cache_seconds: float = 1.5, timeout: float = 1.0) -> None:
        """Raise HookError(503) unless Temporal answers a health check now.

        A connected client says nothing about the server behind it (it stays "connected" while the
        server is gone), so /readyz asks the server itself; the answer is reused for
        ``cache_seconds`` so probes every second cost one cheap RPC at most.
        """
        now = time.monotonic()
        if self._ready_at is not None and now - self._ready_at < cache_seconds:
            return
        self._ready_at = None
        client = await self.get()
        try:
            ok = await asyncio.wait_for(
                client.service_client.check_health(timeout=timedelta(seconds=timeout)), timeout=timeout + 0.5
            )
        except Exception as exc:  # any failure of the probe means "not ready": say why, never raise 500
            ok, why = False, f"{type(exc).__name__}: {exc}"
        else:
            why = "the health check answered NOT_SERVING"
        if not ok:
            raise HookError(
                503,
                f"Temporal does not answer now ({why[:200]}); deliveries would get 503",
                outcome="unavailable",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._ready_at = time.monotonic()

    def reset(self) -> None:
        """Forget the client (after UNAVAILABLE) so the next request reconnects."""
        self._client = None


async def _attrs_registered(client: Client) -> bool:
    try:
        return await asyncio.wait_for(search_attributes_registered(client, sa.NAMES), timeout=5)
    except TimeoutError:
        return False
