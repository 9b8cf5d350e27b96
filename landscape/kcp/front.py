"""The HTTP face of the local kcp: workspace paths and the APIExport virtual workspace.

    /clusters/<path or logical cluster>/...          one workspace's Kubernetes API (kcp's front proxy)
    /services/apiexport/<cluster>/<export>/clusters/<consumer>/...   one bound consumer, export's resources
    /services/apiexport/<cluster>/<export>/clusters/*/...            list/watch across bound consumers

The virtual workspace serves only consumers with an APIBinding to the export, only the export's
resources and the permission claims the binding accepted; anything else is 403 Forbidden, as kcp
answers. A wildcard watch ends (cleanly) when the set of bindings changes, so a client re-lists and
sees the new set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from landscape.kcp.workspaces import Binding, Kcp
from landscape.kubeapi.app import split_api_path
from landscape.kubeapi.errors import ApiError
from landscape.kubeapi.selectors import field_selector, label_selector
from landscape.kubeapi.store import Event, Watcher

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def _json(body: Any, code: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=code, media_type="application/json")


def _error(err: ApiError) -> Response:
    return _json(err.status(), err.code)


def parse_api_path(rest: str) -> tuple[str, str, str | None, str | None]:
    """(group, version, namespace, plural) of `api/v1/...` or `apis/G/V/...`; plural None for discovery."""
    split = split_api_path(rest)
    if split is None:
        return "", "", None, None
    group, version, namespace, tail = split
    return group, version, namespace, (tail[0] if tail else None)


class KcpFront:
    """Routes requests to workspaces and implements the virtual workspace on top of them."""

    def __init__(self, kcp: Kcp) -> None:
        self.kcp = kcp
        self.wildcard_stops: set[asyncio.Event] = set()
        kcp.on_bindings_changed.append(self.end_wildcard_watches)

    def end_wildcard_watches(self) -> int:
        for stop in list(self.wildcard_stops):
            stop.set()
        return len(self.wildcard_stops)

    async def forward(self, scope: Scope, receive: Receive, send: Send, cluster: str, rest: str) -> None:
        try:
            ws = self.kcp.get(cluster)
        except ApiError as err:
            await _error(err)(scope, receive, send)
            return
        path = "/" + rest
        inner = {**scope, "path": path, "raw_path": path.encode(), "root_path": ""}
        await ws.app(inner, receive, send)
        if scope["method"] in MUTATING:
            self.kcp.reconcile()

    async def clusters(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        await self.forward(scope, receive, send, request.path_params["cluster"], request.path_params["rest"])

    async def virtual(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        p = request.path_params
        export_cluster, export, consumer, rest = p["exportcluster"], p["export"], p["consumer"], p["rest"]
        try:
            owner = self.kcp.get(export_cluster)
            bindings = self.kcp.bound(owner.name, export)
            group, version, namespace, plural = parse_api_path(rest)
            if consumer == "*":
                response = self.wildcard(request, bindings, group, version, namespace, plural)
                await response(scope, receive, send)
                return
            target = self.kcp.get(consumer)
            binding = next((b for b in bindings if b.consumer == target.name), None)
            if binding is None:
                raise ApiError(403, f"workspace {consumer} has no APIBinding to export {export_cluster}:{export}")
            if plural is not None and not _allowed(binding, group, plural):
                raise ApiError(403, f"{plural}.{group or 'core'} is not part of export {export} nor an accepted claim")
            if (group, plural) == BINDINGS and request.method != "GET":
                raise ApiError(403, "APIBindings are read-only in the virtual workspace")
        except ApiError as err:
            await _error(err)(scope, receive, send)
            return
        await self.forward(scope, receive, send, target.name, rest)

    def wildcard(
        self, request: Request, bindings: list[Binding], group: str, version: str, ns: str | None, plural: str | None
    ) -> Response:
        if plural is None or request.method != "GET" or request.url.path.rstrip("/").endswith("/status"):
            raise ApiError(405, "across workspaces (clusters/*) only list and watch of a resource are served")
        q = request.query_params
        match_l, match_f = label_selector(q.get("labelSelector")), field_selector(q.get("fieldSelector"))

        def matcher(obj: dict[str, Any]) -> bool:
            return match_l(obj) and match_f(obj)

        sources = []
        for b in bindings:
            if not _allowed(b, group, plural):
                continue
            ws = self.kcp.get(b.consumer)
            kind = ws.server.registry.get(group, version, plural)
            if kind is not None:
                sources.append((ws, kind, _only(b.name) if (group, plural) == BINDINGS else matcher))
        if (q.get("watch") or "").lower() in ("1", "true"):
            return self.watch(sources, ns, q.get("resourceVersion"), float(q.get("timeoutSeconds") or 1800))
        items: list[dict[str, Any]] = []
        list_kind = f"{plural}List"
        for ws, kind, match in sources:
            found, _ = ws.store.list_objects(kind, ns, match)
            items += found
            list_kind = kind.list_kind
        api_version = f"{group}/{version}" if group else version
        meta = {"resourceVersion": str(self.kcp.clock.rv)}
        return _json({"kind": list_kind, "apiVersion": api_version, "metadata": meta, "items": items})

    def watch(self, sources: list[Any], ns: str | None, rv: str | None, timeout: float) -> Response:
        opened: list[tuple[Any, Watcher]] = []
        replay: list[Event] = []
        try:
            for ws, kind, match in sources:
                events, watcher = ws.store.watch(kind, ns, rv, match)
                opened.append((ws, watcher))
                replay += events
        except ApiError as err:
            for ws, watcher in opened:
                ws.store.unwatch(watcher)
            if err.code != 410:
                raise
            line = json.dumps({"type": "ERROR", "object": err.status()}) + "\n"
            return Response(line, media_type="application/json")
        replay.sort(key=lambda ev: ev.rv)
        stop = asyncio.Event()
        self.wildcard_stops.add(stop)

        async def stream() -> AsyncIterator[bytes]:
            merged: asyncio.Queue[Event | None] = asyncio.Queue()

            async def pump(w: Watcher) -> None:
                while True:
                    ev = await w.queue.get()
                    await merged.put(ev)
                    if ev is None:
                        return

            tasks = [asyncio.create_task(pump(w)) for _, w in opened]
            stopper = asyncio.create_task(stop.wait())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            try:
                for ev in replay:
                    yield _event_line(ev)
                while not stop.is_set():
                    getter = asyncio.create_task(merged.get())
                    done, _ = await asyncio.wait(
                        {getter, stopper}, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter not in done:
                        getter.cancel()
                        return
                    got = getter.result()
                    if got is None:  # a workspace's watches were cut: end this one too
                        return
                    yield _event_line(got)
            finally:
                self.wildcard_stops.discard(stop)
                stopper.cancel()
                for t in tasks:
                    t.cancel()
                for ws, w in opened:
                    ws.store.unwatch(w)
                with contextlib.suppress(BaseException):
                    await asyncio.gather(stopper, *tasks, return_exceptions=True)

        return StreamingResponse(stream(), media_type="application/json")

    async def workspaces(self, request: Request) -> Response:
        """Admin view: every logical cluster and every binding the virtual workspaces serve."""
        return _json(
            {
                "workspaces": [{"path": w.path, "name": w.name} for w in self.kcp.by_path.values()],
                "bindings": [
                    {
                        "consumer": b.consumer,
                        "export": f"{b.export_cluster}:{b.export}",
                        "resources": sorted(b.resources),
                    }
                    for b in self.kcp.bindings.values()
                ],
            }
        )

    async def cut(self, request: Request) -> Response:
        return _json({"cut": self.end_wildcard_watches()})


#: The provider sees the APIBindings to its export (read-only), to learn which workspaces bound it.
BINDINGS = ("apis.kcp.io", "apibindings")


def _allowed(binding: Binding, group: str, plural: str) -> bool:
    return (group, plural) in binding.resources or (group, plural) in binding.claims or (group, plural) == BINDINGS


def _only(name: str) -> Any:
    return lambda obj: obj["metadata"]["name"] == name


def _event_line(ev: Event) -> bytes:
    return (json.dumps({"type": ev.type, "object": ev.obj}, separators=(",", ":")) + "\n").encode()


class _Asgi:
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.fn(scope, receive, send)


def make_kcp_app(kcp: Kcp) -> Starlette:
    front = KcpFront(kcp)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    async def healthz(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", healthz),
        Route("/admin/kcp", front.workspaces),
        Route("/admin/kcp/cut-virtual-watches", front.cut, methods=["POST"]),
        Route("/clusters/{cluster}/{rest:path}", _Asgi(front.clusters), methods=methods),
        Route(
            "/services/apiexport/{exportcluster}/{export}/clusters/{consumer}/{rest:path}",
            _Asgi(front.virtual),
            methods=methods,
        ),
    ]
    app = Starlette(routes=routes)
    app.state.front = front
    with contextlib.suppress(AttributeError):
        app.state.kcp = kcp
    return app
