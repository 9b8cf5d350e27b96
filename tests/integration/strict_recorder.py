"""A recording proxy in front of the landscape API server: every write is forwarded with
``fieldValidation=Strict`` (whatever the client asked for) and recorded with its answer.

It is how the integration tier checks that what the product writes validates strictly against the
upstream CRDs: kube-apiserver answers a Strict write that carries an unknown (would-be pruned) field
with 400 "strict decoding error", a schema violation with 422, and a Warn write with ``Warning``
headers. A test runs the product's activities against :attr:`StrictRecorder.url` and then asserts
:meth:`StrictRecorder.violations` is empty. Plain request/response only (the product's Kubernetes
clients poll; a watch through the proxy would be buffered).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from landscape.process import free_port

WRITES = ("POST", "PUT", "PATCH")


@dataclass
class Write:
    method: str
    path: str
    asked: str  # the client's own fieldValidation ("" when it sent none)
    status: int
    warnings: list[str]
    message: str = ""

    @property
    def violation(self) -> bool:
        """Refused by strict decoding or the schema, or accepted with a warning (a pruned field)."""
        return self.status in (400, 422) or bool(self.warnings)

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status} {self.message} {self.warnings or ''}".strip()


@dataclass
class StrictRecorder:
    upstream: str
    writes: list[Write] = field(default_factory=list)
    url: str = ""
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    async def _forward(self, request: Request) -> Response:
        params = dict(request.query_params)
        asked = params.get("fieldValidation", "")
        if request.method in WRITES:
            params["fieldValidation"] = "Strict"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with httpx.AsyncClient(base_url=self.upstream, timeout=30) as client:
            resp = await client.request(
                request.method, request.url.path, params=params, headers=headers, content=await request.body()
            )
        if request.method in WRITES:
            message = ""
            if resp.status_code >= 400:
                try:
                    message = str(resp.json().get("message", ""))
                except ValueError:
                    message = resp.text[:300]
            self.writes.append(
                Write(
                    request.method, request.url.path, asked, resp.status_code, resp.headers.get_list("warning"), message
                )
            )
        out = {
            k: v
            for k, v in resp.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
        }
        return Response(resp.content, status_code=resp.status_code, headers=out)

    def start(self) -> StrictRecorder:
        port = free_port()
        app = Starlette(
            routes=[Route("/{path:path}", self._forward, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
        )
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        )
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)  # type: ignore[union-attr]
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the recording proxy did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def violations(self) -> list[Write]:
        return [w for w in self.writes if w.violation]

    def kubeconfig(self) -> str:
        """A kubeconfig (as text) for clients that take one, pointing at the proxy."""
        return (
            "apiVersion: v1\nkind: Config\ncurrent-context: proxy\n"
            f"clusters: [{{name: proxy, cluster: {{server: '{self.url}'}}}}]\n"
            "users: [{name: proxy, user: {}}]\n"
            "contexts: [{name: proxy, context: {cluster: proxy, user: proxy}}]\n"
        )
