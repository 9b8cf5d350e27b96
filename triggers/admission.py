"""Bounded admission for the webhook gateway: past its knee it sheds load with 503 + Retry-After.

Without a bound, a flood past what Temporal can start queues deliveries in the gateway until every
one of them waits longer than its sender's timeout: the sender sees a timeout, does not know whether
the event was taken, and retries into a queue that is still growing. With a bound on deliveries in
flight, a delivery beyond it is answered at once with 503 and ``Retry-After`` *before its body is
read*, so it was not accepted and nothing about it is half-done; webhook senders retry 5xx, and the
retry carries the same event id, so it starts the workflow exactly once when it gets in. Deliveries
that were admitted run to completion as before: nothing accepted is lost.

Only deliveries (POST) count; health, readiness, metrics and the OpenAPI document are never shed.
It is a plain ASGI middleware so it wraps the app whatever routes it has.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Deliveries handled at once by one gateway process (``APEIRO_WEBHOOK_MAX_IN_FLIGHT``).
DEFAULT_MAX_IN_FLIGHT = 64
#: What a shed delivery is told to wait before retrying (``APEIRO_WEBHOOK_SHED_RETRY_AFTER``).
DEFAULT_RETRY_AFTER = 1


def from_env() -> tuple[int, int]:
    return (
        int(os.environ.get("APEIRO_WEBHOOK_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT)),
        int(os.environ.get("APEIRO_WEBHOOK_SHED_RETRY_AFTER", DEFAULT_RETRY_AFTER)),
    )


class AdmissionLimit:
    """At most ``max_in_flight`` POST requests inside ``app``; the rest get 503 + Retry-After."""

    def __init__(
        self,
        app: ASGIApp,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        retry_after: int = DEFAULT_RETRY_AFTER,
        on_shed: Callable[[str], None] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.app = app
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self.on_shed = on_shed
        self.in_flight = 0
        self.peak = 0
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self.shed += 1
            if self.on_shed is not None:
                self.on_shed(str(scope.get("path", "")))
            await self._overloaded(send)
            return
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _overloaded(self, send: Send) -> None:
        body = json.dumps(
            {
                "accepted": False,
                "status": 503,
                "error": f"the gateway is at its limit of {self.max_in_flight} deliveries in flight; "
                f"this delivery was not accepted: send it again after {self.retry_after} s",
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
