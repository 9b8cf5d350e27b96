"""Per-route authentication: HMAC-SHA256 with a timestamp window, or bearer tokens.

Keys are secret references resolved through ``activities.secrets.resolve_secret`` and cached for a
short time, so rotating a key (rewriting the file or the Kubernetes Secret) takes effect without a
restart. Every listed key is accepted, so old and new senders overlap during a rotation.

Signature header (HMAC): ``X-Apeiro-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256(key, ``<t>.`` + raw body). Several ``v1=`` entries may be sent (one per key the sender
holds). A timestamp outside the window is refused, so a captured delivery cannot be replayed later;
a replay inside the window starts nothing new, because workflow ids derive from event ids.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from activities.secrets import SecretError, resolve_secret
from definitions.triggers import Auth, BearerAuth, HmacAuth, NoAuth
from triggers.events import HookError


def sign(body: bytes, key: str, timestamp: int | None = None) -> str:
    """The header value a sender puts on ``body`` (used by the docs, the tests and the bench)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(key.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class KeyCache:
    """Resolved secrets by reference, refreshed after ``ttl`` seconds."""

    def __init__(self, ttl: float = 30.0, resolver: Callable[[str], str] = resolve_secret) -> None:
        self.ttl = ttl
        self.resolver = resolver
        self._cache: dict[str, tuple[float, str]] = {}

    def get(self, ref: str) -> str:
        now = time.monotonic()
        hit = self._cache.get(ref)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            value = self.resolver(ref)
        except SecretError as exc:
            raise HookError(
                503,
                f"the gateway cannot read its key {ref!r}: {exc.message}; an operator must fix the reference",
                outcome="key_unavailable",
                headers={"Retry-After": "30"},
            ) from None
        self._cache[ref] = (now, value)
        return value

    def check(self, refs: list[str]) -> list[str]:
        """Problems resolving ``refs`` (for start-up checks)."""
        problems = []
        for ref in refs:
            try:
                self.get(ref)
            except HookError as exc:
                problems.append(exc.reason)
        return problems


def _parse_signature(value: str) -> tuple[int, list[str]]:
    t: int | None = None
    sigs: list[str] = []
    for part in value.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                t = int(val)
            except ValueError:
                raise HookError(401, "signature header: t= is not a unix timestamp") from None
        elif key == "v1":
            sigs.append(val.strip().lower())
    if t is None or not sigs:
        raise HookError(401, "signature header must look like t=<unix seconds>,v1=<hex hmac-sha256>")
    return t, sigs


def verify(auth: Auth, headers: Mapping[str, str], body: bytes, keys: KeyCache, now: float | None = None) -> None:
    """Raise HookError(401) unless the request carries valid credentials for ``auth``."""
    if isinstance(auth, NoAuth):
        return
    if isinstance(auth, BearerAuth):
        given = headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HookError(
                401, "missing bearer token (Authorization: Bearer <token>)", headers={"WWW-Authenticate": "Bearer"}
            )
        token = token.strip()
        if not any(hmac.compare_digest(token.encode(), keys.get(ref).encode()) for ref in auth.tokens):
            raise HookError(401, "bearer token not accepted", headers={"WWW-Authenticate": "Bearer"})
        return
    assert isinstance(auth, HmacAuth)
    header = headers.get(auth.header.lower())
    if not header:
        raise HookError(401, f"missing signature header {auth.header}")
    t, sigs = _parse_signature(header)
    now = time.time() if now is None else now
    if abs(now - t) > auth.tolerance_seconds:
        raise HookError(
            401,
            f"signature timestamp {t} is {int(now - t)} s from the gateway's clock, outside the "
            f"{auth.tolerance_seconds} s window (stale or replayed delivery; check the sender's clock)",
            outcome="stale",
        )
    message = f"{t}.".encode() + body
    for ref in auth.secrets:
        expected = hmac.new(keys.get(ref).encode(), message, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, s) for s in sigs):
            return
    raise HookError(401, "signature does not match the body with any of the route's keys", outcome="bad_signature")
