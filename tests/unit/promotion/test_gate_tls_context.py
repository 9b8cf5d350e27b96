"""Gate measurements share one TLS context (building one costs ~50 ms of CPU on the worker's loop)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from activities import konfidence, konfidence_stages
from definitions.promotion_runs import PromQuery


def test_gate_requests_build_the_tls_context_once(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(args or kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    clear = konfidence_stages._ssl_context_for.cache_clear  # the one cache gate and Stage requests share
    clear()

    async def queries() -> list[Any]:
        req = PromQuery(address="http://127.0.0.1:1", query="up")  # nothing listens: an error result
        return [await konfidence.prometheus_query(req) for _ in range(3)]

    results = asyncio.run(queries())
    assert all(not r.ok and r.error for r in results)
    assert len(built) == 1, f"{len(built)} TLS contexts built for 3 queries"
    clear()
