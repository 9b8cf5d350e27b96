"""Bounded admission for the webhook gateway: past its knee it sheds load with 503 + Retry-After.

Without a bound, a flood past what Temporal can start queues deliveries in the gateway until every
one of them waits longer than its sender's timeout: the sender sees a timeout, does not know whether
the event was taken, and retries into a queue that is still growing. With a bound on deliveries in
flight, a delivery beyond it is answered at once with 503 and ``Retry-After`` *before its body is
read*, so it was not accepted and nothing about it is half-done; webhook senders retry 5xx, and the
retry carries the same event id, so it starts the workflow exactly once when it gets in. Deliveries
that were admitted run to completion as before: nothing accepted is lost.

The bound adapts to Temporal (AIMD, as in Netflix's concurrency-limits): a count alone does not bound
latency, since 64 deliveries in flight wait 64 x whatever one start takes when Temporal slows. Each
admitted delivery's time inside the gateway is measured; one slower than ``target_latency`` shrinks
the limit by a quarter, or by target/took down to a half when it was much slower (at most once per
``target_latency``, so the deliveries of one slow burst are one step), and
each faster one grows it by 1/limit (about one more slot per round trip) back up to
``max_in_flight``, never below ``min_in_flight``. Deliveries beyond the current limit get 503 at
once, so an accepted delivery's wait stays near the target while the excess is told when to retry.

Only deliveries (POST) count; health, readiness, metrics and the OpenAPI document are never shed.
It is a plain ASGI middleware so it wraps the app whatever routes it has.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Deliveries handled at once by one gateway process, at most (``APEIRO_WEBHOOK_MAX_IN_FLIGHT``).
DEFAULT_MAX_IN_FLIGHT = 64
#: ... and at least, however slow Temporal gets (``APEIRO_WEBHOOK_MIN_IN_FLIGHT``).
DEFAULT_MIN_IN_FLIGHT = 4
#: A delivery slower than this shrinks the limit (``APEIRO_WEBHOOK_TARGET_LATENCY``, s; 0: fixed limit).
DEFAULT_TARGET_LATENCY = 1.0
#: What a shed delivery is told to wait before retrying (``APEIRO_WEBHOOK_SHED_RETRY_AFTER``).
DEFAULT_RETRY_AFTER = 1


class AdmissionConfigError(ValueError):
    """An ``APEIRO_WEBHOOK_*`` admission setting is not a usable number; the message names it."""


def _setting(env: Mapping[str, str], name: str, default: float, kind: type[int] | type[float], least: float) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise AdmissionConfigError(f"{name} must be {what} >= {least:g}, not {raw!r}") from None
    if value < least or value != value:  # NaN compares false to everything
        raise AdmissionConfigError(f"{name} must be >= {least:g}, not {raw!r}")
    return value


def from_env(env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The admission settings from the environment, as keyword arguments of :class:`AdmissionLimit`.

    Raises AdmissionConfigError naming the variable, so `apeiro webhook serve` exits 2 with it
    instead of a traceback."""
    return {
        "max_in_flight": _setting(env, "APEIRO_WEBHOOK_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT, int, 1),
        "min_in_flight": _setting(env, "APEIRO_WEBHOOK_MIN_IN_FLIGHT", DEFAULT_MIN_IN_FLIGHT, int, 1),
        "target_latency": _setting(env, "APEIRO_WEBHOOK_TARGET_LATENCY", DEFAULT_TARGET_LATENCY, float, 0),
        "retry_after": _setting(env, "APEIRO_WEBHOOK_SHED_RETRY_AFTER", DEFAULT_RETRY_AFTER, int, 0),
    }


class AdmissionLimit:
    """At most ``limit`` POST requests inside ``app`` (adapted between ``min_in_flight`` and
    ``max_in_flight`` to keep each under ``target_latency``); the rest get 503 + Retry-After."""

    def __init__(
        self,
        app: ASGIApp,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        retry_after: int = DEFAULT_RETRY_AFTER,
        on_shed: Callable[[str], None] | None = None,
        *,
        min_in_flight: int = DEFAULT_MIN_IN_FLIGHT,
        target_latency: float = 0.0,
        on_limit: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if target_latency < 0:
            raise ValueError(f"target_latency must be >= 0 s (0: a fixed limit), got {target_latency}")
        self.app = app
        self.max_in_flight = max_in_flight
        self.min_in_flight = max(1, min(min_in_flight, max_in_flight))
        self.target_latency = target_latency
        self.retry_after = retry_after
        self.on_shed = on_shed
        self.on_limit = on_limit
        self.clock = clock
        self._limit = float(max_in_flight)
        self._decreased_at = -1e9
        self.in_flight = 0
        self.peak = 0
        self.shed = 0
        self.slow = 0

    @property
    def limit(self) -> int:
        return int(self._limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.shed += 1
            if self.on_shed is not None:
                self.on_shed(str(scope.get("path", "")))
            await self._overloaded(send)
            return
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        started = self.clock()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self._adapt(self.clock() - started)

    def _adapt(self, took: float) -> None:
        if not self.target_latency:
            return
        before = self.limit
        now = self.clock()
        if took > self.target_latency:
            self.slow += 1
            # One step per target window: the deliveries already in flight when Temporal slowed all
            # come back slow, and they are one signal, not `limit` of them.
            if now - self._decreased_at >= self.target_latency:
                step = max(0.5, min(0.75, self.target_latency / took))
                self._limit = max(float(self.min_in_flight), self._limit * step)
                self._decreased_at = now
        else:
            self._limit = min(float(self.max_in_flight), self._limit + 1.0 / self._limit)
        if self.limit != before and self.on_limit is not None:
            self.on_limit(self.limit)

    async def _overloaded(self, send: Send) -> None:
        body = json.dumps(
            {
                "accepted": False,
                "status": 503,
                "error": f"the gateway is at its limit of {self.limit} deliveries in flight"
                + (
                    f" (lowered from {self.max_in_flight}: deliveries took longer than {self.target_latency:g} s)"
                    if self.limit < self.max_in_flight
                    else ""
                )
                + f"; this delivery was not accepted: send it again after {self.retry_after} s",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(self.retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
