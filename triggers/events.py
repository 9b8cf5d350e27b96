"""What every source hands the dispatcher, and the errors that become HTTP answers."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any


class HookError(Exception):
    """A request the gateway refuses; ``status`` and ``reason`` go back to the sender as they are."""

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        outcome: str = "",
        headers: dict[str, str] | None = None,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.outcome = outcome or _OUTCOMES.get(status, "rejected")
        self.headers = headers or {}
        self.details = details or []


_OUTCOMES = {
    400: "bad_request",
    401: "unauthenticated",
    404: "not_found",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    502: "temporal_error",
    503: "unavailable",
}


@dataclass
class Event:
    """One event of a delivery (a registry envelope or an Alertmanager group can hold several).

    ``id`` is stable across redeliveries of the same event: the workflow id derives from it.
    ``data`` is what rules see as ``event`` in CEL.
    """

    id: str
    data: dict[str, Any] = field(default_factory=dict)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def id_fragment(event_id: str, max_len: int = 80) -> str:
    """A readable, workflow-id-safe form of an event id; hashed when it had to be shortened or changed."""
    safe = _UNSAFE.sub("-", event_id).strip("-")
    if safe == event_id and len(safe) <= max_len:
        return safe
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:12]
    return f"{safe[: max_len - 13]}-{digest}" if safe else digest
