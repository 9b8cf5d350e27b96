"""The benchmarks' load client: aiohttp with keep-alive connections, and how long each request waited.

Why not httpx: one httpx.AsyncClient offering 200-400 deliveries/s used ~90% of a core in the load
generator and its requests waited seconds in its own connection pool before leaving the process
(bench.webhook, busy machine), so the latency printed was mostly the client's. aiohttp's connector
(C-accelerated parser, up to ``max_connections`` kept open) costs a small fraction of that per
request, so the figure is the gateway's. A real sender is another machine.

``waited`` per answer is the time from the call until the request's headers were written: waiting
for a free connection or opening one (aiohttp's request tracing).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    #: seconds from the call until the request was written (waiting for and opening a connection)
    waited: float


def _wait_tracer() -> aiohttp.TraceConfig:
    """Stamps each request's ``trace_request_ctx`` with when it started and when its headers left."""
    trace = aiohttp.TraceConfig()

    async def started(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
        ctx.trace_request_ctx.t0 = asyncio.get_running_loop().time()

    async def sent(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
        ctx.trace_request_ctx.sent = asyncio.get_running_loop().time()

    trace.on_request_start.append(started)
    trace.on_request_headers_sent.append(sent)
    return trace


class LoadClient:
    """POSTs to one ``http://host:port`` over at most ``max_connections`` keep-alive connections."""

    def __init__(self, host: str, port: int, max_connections: int = 500, timeout: float = 30.0) -> None:
        self._session = aiohttp.ClientSession(
            base_url=f"http://{host}:{port}",
            connector=aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=2.0),
            timeout=aiohttp.ClientTimeout(total=timeout),
            trace_configs=[_wait_tracer()],
            skip_auto_headers=("User-Agent",),
        )

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        ctx = SimpleNamespace(t0=0.0, sent=0.0)
        async with self._session.post(path, data=body, headers=headers, trace_request_ctx=ctx) as resp:
            data = await resp.read()
            return Answer(
                resp.status, {k.lower(): v for k, v in resp.headers.items()}, data, max(0.0, ctx.sent - ctx.t0)
            )

    async def aclose(self) -> None:
        await self._session.close()
