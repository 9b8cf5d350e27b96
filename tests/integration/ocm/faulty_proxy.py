"""A reverse proxy in front of a registry that answers 429/503 (with Retry-After) now and then."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from landscape.process import free_port
from tests.proxy_support import HOP, catch_all, serving


class FaultyProxy:
    def __init__(self, upstream: str, ca_bundle: str | None = None, every: int = 3) -> None:
        self.upstream = upstream.rstrip("/")
        self.every = every
        self.requests = 0
        self.faults: list[int] = []
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self.client = httpx.AsyncClient(verify=verify, timeout=60)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def handle(self, request: Request) -> Response:
        self.requests += 1
        if self.requests % self.every == 0:
            status = 429 if (self.requests // self.every) % 2 else 503
            self.faults.append(status)
            return Response(status_code=status, headers={"Retry-After": "0"})
        url = self.upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        body = await request.body()
        upstream = await self.client.send(
            self.client.build_request(request.method, url, headers=headers, content=body), stream=True
        )
        out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP}
        if "location" in out:
            out["location"] = out["location"].replace(self.upstream, self.url)
        if request.method == "HEAD" and "content-length" in upstream.headers:
            out["content-length"] = upstream.headers["content-length"]

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        if request.method == "HEAD":
            await upstream.aclose()
            return Response(status_code=upstream.status_code, headers=out)
        return StreamingResponse(stream(), status_code=upstream.status_code, headers=out)


@contextmanager
def faulty_proxy(upstream: str, ca_bundle: str | None = None, every: int = 3) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(upstream, ca_bundle, every)
    with serving(catch_all(proxy.handle), proxy.port):
        yield proxy
