"""A reverse proxy in front of a registry that throttles (429 + Retry-After) and drops connections
in the middle of chunk uploads, and counts what reaches the registry.

A dropped PATCH has its whole body read by the proxy and never forwarded, then the client's
connection is aborted: what a load balancer that buffers request bodies (nginx's default) does when
it gives up. The registry's upload state is untouched, so the client can ask it where the upload
stands and send the chunk again. ``drop_put_every``: the same for every n-th closing PUT that carries
the last chunk of a blob (a body of at least ``PUT_CHUNK``; smaller PUTs are monolithic uploads).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tests.integration.ocm.faulty_proxy import FaultyProxy
from tests.proxy_support import catch_all, serving

UPLOAD = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<uid>[^/]+)$")
#: A closing PUT with at least this body carries a chunk (``drop_put_every`` counts those).
PUT_CHUNK = 64 * 1024


class DroppingProxy(FaultyProxy):
    def __init__(
        self,
        upstream: str,
        ca_bundle: str | None = None,
        *,
        drop_patch_every: int = 4,
        throttle_every: int = 7,
        drop_put_every: int = 0,
    ) -> None:
        super().__init__(upstream, ca_bundle, every=10**9)  # the parent's own faults: never
        self.drop_patch_every = drop_patch_every
        self.drop_put_every = drop_put_every
        self.chunk_puts = 0  # closing PUTs that carried a chunk
        self.put_drops = 0
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
        if m and request.method == "PUT" and int(request.headers.get("content-length") or 0) >= PUT_CHUNK:
            self.chunk_puts += 1
            if self.drop_put_every and self.chunk_puts % self.drop_put_every == 0:
                await request.body()
                self.put_drops += 1
                request.scope["apeiro.transport"].abort()
                return Response(status_code=502)
        resp = await super().handle(request)
        if m and request.method in ("PATCH", "PUT") and resp.status_code in (201, 202):
            self.forwarded[m["uid"]] += len(await request.body())
        if m and request.method == "PUT" and resp.status_code == 201:
            digest = request.query_params.get("digest", "")
            self.commits[(m["repo"], digest)] += 1
            self.upload_of[m["uid"]] = digest
        return resp


@contextmanager
def dropping_proxy(upstream: str, ca_bundle: str | None = None, **kw: Any) -> Iterator[DroppingProxy]:
    proxy = DroppingProxy(upstream, ca_bundle, **kw)
    inner = catch_all(proxy.handle)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # uvicorn's send is a method of the connection's request cycle: its transport is what we abort.
        scope["apeiro.transport"] = getattr(getattr(send, "__self__", None), "transport", None)
        await inner(scope, receive, send)

    with serving(app, proxy.port):
        yield proxy
