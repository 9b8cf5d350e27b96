"""A reverse proxy in front of a registry that throttles (429 + Retry-After) and drops connections
in the middle of chunk uploads, and counts what reaches the registry.

A dropped PATCH has its whole body read by the proxy and never forwarded, then the client's
connection is aborted: what a load balancer that buffers request bodies (nginx's default) does when
it gives up. The registry's upload state is untouched, so the client can ask it where the upload
stands and send the chunk again.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from landscape.process import port_open
from tests.integration.ocm.faulty_proxy import FaultyProxy

UPLOAD = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<uid>[^/]+)$")


class DroppingProxy(FaultyProxy):
    def __init__(
        self, upstream: str, ca_bundle: str | None = None, *, drop_patch_every: int = 4, throttle_every: int = 7
    ) -> None:
        super().__init__(upstream, ca_bundle, every=10**9)  # the parent's own faults: never
        self.drop_patch_every = drop_patch_every
        self.throttle_every = throttle_every
        self.seen = 0
        self.patches = 0
        self.drops = 0
        self.throttled = 0
        self.forwarded: Counter[str] = Counter()  # upload id -> PATCH bytes the registry received
        self.commits: Counter[tuple[str, str]] = Counter()  # (repo, digest) -> uploads committed
        self.upload_of: dict[str, str] = {}  # upload id -> digest it was committed as

    async def handle(self, request: Request) -> Response:
        self.seen += 1
        if self.seen % self.throttle_every == 0:
            self.throttled += 1
            return Response(status_code=429, headers={"Retry-After": "1"})
        m = UPLOAD.match(request.url.path)
        if request.method == "PATCH":
            self.patches += 1
            if self.patches % self.drop_patch_every == 0:
                await request.body()  # the whole chunk arrived here; it never reaches the registry
                self.drops += 1
                request.scope["apeiro.transport"].abort()
                return Response(status_code=502)  # never delivered: the connection is gone
        resp = await super().handle(request)
        if m and request.method == "PATCH" and resp.status_code == 202:
            self.forwarded[m["uid"]] += len(await request.body())
        if m and request.method == "PUT" and resp.status_code == 201:
            digest = request.query_params.get("digest", "")
            self.commits[(m["repo"], digest)] += 1
            self.upload_of[m["uid"]] = digest
        return resp


@contextmanager
def dropping_proxy(upstream: str, ca_bundle: str | None = None, **kw: Any) -> Iterator[DroppingProxy]:
    proxy = DroppingProxy(upstream, ca_bundle, **kw)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    inner = Starlette(routes=[Route("/{path:path}", proxy.handle, methods=methods)])

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # uvicorn's send is a method of the connection's request cycle: its transport is what we abort.
        scope["apeiro.transport"] = getattr(getattr(send, "__self__", None), "transport", None)
        await inner(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=proxy.port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", proxy.port) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield proxy
    finally:
        server.should_exit = True
        thread.join(timeout=10)
