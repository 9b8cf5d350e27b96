"""The HTTP face of the API server (ASGI, starlette): Kubernetes REST paths, discovery, watch, admin.

Path forms served (``/api/v1`` for the core group, ``/apis/GROUP/VERSION`` for the others)::

    PREFIX/PLURAL[/NAME[/status]]                       cluster-scoped kinds, or all namespaces
    PREFIX/namespaces/NS/PLURAL[/NAME[/status]]         namespaced kinds
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from landscape.kubeapi import crd as crds
from landscape.kubeapi import openapi, patches
from landscape.kubeapi.errors import ApiError
from landscape.kubeapi.faults import Faults, FaultSpec
from landscape.kubeapi.kinds import Kind, KindRegistry, default_registry
from landscape.kubeapi.selectors import field_selector, label_selector
from landscape.kubeapi.store import Event, Store
from landscape.kubeapi.table import table, wants_table

log = logging.getLogger(__name__)

SERVER_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-apeiro",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2026-11-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class ApiServer:
    """Everything one server instance holds; plugins (controllers, extra kinds) extend it."""

    registry: KindRegistry = field(default_factory=default_registry)
    store: Store = field(init=False)
    faults: Faults = field(default_factory=Faults)
    bookmark_interval: float = 5.0
    default_watch_timeout: float = 1800.0
    history_size: int = 2000
    admin_routes: list[Route] = field(default_factory=list)
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    plugin_config: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, int] = field(
        default_factory=lambda: {"requests": 0, "watches": 0, "faults": 0, "expiredWatches": 0}
    )

    def __post_init__(self) -> None:
        self.store = Store(self.registry, history_size=self.history_size)
        #: CustomResourceDefinitions: creating one serves its kind (see landscape.kubeapi.crd).
        self.crds = crds.CrdServer(self.store)

    def kind(self, api_version: str, kind: str) -> Kind:
        k = self.registry.by_kind(api_version, kind)
        if k is None:
            raise KeyError(f"kind {kind} in {api_version} is not registered")
        return k


def json_response(body: Any, code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=code,
        media_type="application/json",
        headers=headers,
    )


def error_response(err: ApiError) -> Response:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after else None
    return json_response(err.status(), err.code, headers)


# --- discovery ------------------------------------------------------------------------------------


def _resource_list(server: ApiServer, group: str, version: str) -> dict[str, Any]:
    resources = []
    for k in server.registry.all():
        if k.group != group or k.version != version:
            continue
        resources.append(
            {
                "name": k.plural,
                "singularName": k.singular,
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": VERBS,
                "shortNames": list(k.short_names),
                **({"categories": list(k.categories)} if k.categories else {}),
            }
        )
        if k.status_subresource:
            resources.append(
                {
                    "name": f"{k.plural}/status",
                    "singularName": "",
                    "namespaced": k.namespaced,
                    "kind": k.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}


# --- request parsing ------------------------------------------------------------------------------


@dataclass
class Target:
    kind: Kind
    namespace: str | None
    name: str | None
    subresource: str


def split_api_path(path: str) -> tuple[str, str, str | None, list[str]] | None:
    """``api/v1/...`` or ``apis/G/V/...`` as (group, version, namespace, the rest: plural, name,
    subresource); None for any other path."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    return group, version, namespace, rest


def parse_path(server: ApiServer, path: str) -> Target | None:
    split = split_api_path(path)
    if split is None or not split[3]:
        return None
    group, version, namespace, rest = split
    plural, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else ""
    if len(rest) > 3:
        raise ApiError(404, f"the server could not find the requested resource ({path})")
    kind = server.registry.get(group, version, plural)
    if kind is None:
        raise ApiError(
            404,
            f"the server could not find the requested resource ({path})",
            details={"group": group, "kind": plural},
        )
    if sub and (sub != "status" or not kind.status_subresource):
        raise ApiError(404, f"the server could not find the requested resource ({path})")
    if namespace is not None and not kind.namespaced:
        raise ApiError(404, f"{kind.kind} is cluster-scoped; drop /namespaces/{namespace} from {path}")
    return Target(kind, namespace, name, sub)


async def read_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    try:
        if ctype == patches.APPLY or ctype.endswith("yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise ApiError(400, f"the request body is not valid {ctype}: {exc}") from None


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


# --- handlers -------------------------------------------------------------------------------------


def make_app(server: ApiServer) -> Starlette:
    store = server.store

    async def version(request: Request) -> Response:
        return json_response(SERVER_VERSION)

    async def api(request: Request) -> Response:
        return json_response(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.url.netloc}],
            }
        )

    async def apis(request: Request) -> Response:
        groups = [_group(g, vs) for g, vs in sorted(server.registry.groups().items())]
        return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    async def healthz(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def openapi_v2(request: Request) -> Response:
        return json_response(openapi.v2(server.registry))

    async def openapi_v3(request: Request) -> Response:
        gv = request.path_params.get("path", "")
        if not gv:
            return json_response(openapi.v3_root(server.registry))
        doc = openapi.v3_document(server.registry, gv.strip("/"))
        if doc is None:
            return error_response(ApiError(404, f"the server could not find the requested resource (/openapi/v3/{gv})"))
        return json_response(doc)

    async def resource(request: Request) -> Response:
        server.stats["requests"] += 1
        path = request.url.path
        try:
            parts = [p for p in path.split("/") if p]
            if parts == ["api", "v1"]:
                return json_response(_resource_list(server, "", "v1"))
            if len(parts) == 2 and parts[0] == "apis":
                versions = server.registry.groups().get(parts[1])
                if not versions:
                    raise ApiError(404, f"the server could not find the requested resource ({path})")
                return json_response({"kind": "APIGroup", "apiVersion": "v1", **_group(parts[1], versions)})
            if len(parts) == 3 and parts[0] == "apis":
                if parts[2] not in server.registry.groups().get(parts[1], []):
                    raise ApiError(404, f"the server could not find the requested resource ({path})")
                return json_response(_resource_list(server, parts[1], parts[2]))
            target = parse_path(server, path)
            if target is None:
                raise ApiError(404, f"the server could not find the requested resource ({path})")
            mode = request.query_params.get("fieldValidation") or "Warn"
            if mode not in ("Strict", "Warn", "Ignore"):
                raise ApiError(400, f"fieldValidation must be one of Strict, Warn, Ignore, got {mode!r}")
            crds.FIELD_VALIDATION.set(mode)
            warnings: list[str] = []
            crds.WARNINGS.set(warnings)
            response = await dispatch(request, target)
            for text in dict.fromkeys(warnings):
                response.headers.append("Warning", f"299 - {json.dumps(text)}")
            return response
        except ApiError as err:
            return error_response(err)

    async def dispatch(request: Request, t: Target) -> Response:
        q = request.query_params
        method = request.method
        if method == "GET":
            verb = "get" if t.name else ("watch" if _flag(q.get("watch")) else "list")
        elif method == "POST" and not t.name:
            verb = "create"
        elif method == "PUT" and t.name:
            verb = "update"
        elif method == "PATCH" and t.name:
            verb = "patch"
        elif method == "DELETE":
            verb = "delete" if t.name else "deletecollection"
        else:
            raise ApiError(405, f"the server does not allow method {method} on this resource")
        fault = server.faults.check(verb, t.kind.plural, t.namespace, t.name, t.subresource)
        if fault is not None:
            server.stats["faults"] += 1
            raise fault
        dry_run = q.get("dryRun") == "All"
        manager = q.get("fieldManager") or request.headers.get("user-agent", "unknown").split("/")[0]
        ns = t.namespace
        as_table = wants_table(request.headers.get("accept", ""))
        include = q.get("includeObject") or "Metadata"
        if verb == "get":
            obj = store.get(t.kind, ns, t.name or "")
            if as_table:
                return json_response(table(t.kind, [obj], obj["metadata"]["resourceVersion"], include))
            return json_response(obj)
        if verb in ("list", "watch"):
            if t.kind.namespaced is False:
                ns = None
            matcher_l = label_selector(q.get("labelSelector"))
            matcher_f = field_selector(q.get("fieldSelector"))

            def matcher(o: dict[str, Any]) -> bool:
                return matcher_l(o) and matcher_f(o)

            if verb == "watch":
                return watch(request, t, ns, matcher)
            items, rv = store.list_objects(t.kind, ns, matcher)
            if as_table:
                return json_response(table(t.kind, items, str(rv), include))
            return json_response(
                {
                    "kind": t.kind.list_kind,
                    "apiVersion": t.kind.api_version,
                    "metadata": {"resourceVersion": str(rv)},
                    "items": items,
                }
            )
        if verb == "create":
            body = await read_body(request)
            if t.kind.namespaced and ns is None:
                raise ApiError(405, f"create {t.kind.plural} needs a namespace in the path")
            obj = store.create(t.kind, ns, body, dry_run=dry_run, manager=manager)
            return json_response(obj, 201)
        if verb == "update":
            body = await read_body(request)
            return json_response(
                store.update(
                    t.kind,
                    ns,
                    t.name or "",
                    body,
                    subresource=t.subresource,
                    dry_run=dry_run,
                    manager=manager,
                )
            )
        if verb == "patch":
            ctype = request.headers.get("content-type", "").split(";")[0].strip()
            if ctype == patches.APPLY_CBOR:
                raise ApiError(415, "apply-patch+cbor is not supported; send application/apply-patch+yaml")
            body = await read_body(request)
            code = 201 if ctype == patches.APPLY and store.peek(t.kind, ns, t.name or "") is None else 200
            obj = store.patch(
                t.kind,
                ns,
                t.name or "",
                ctype,
                body,
                subresource=t.subresource,
                dry_run=dry_run,
                manager=q.get("fieldManager") or ("" if ctype == patches.APPLY else manager),
                force=_flag(q.get("force")),
            )
            return json_response(obj, code)
        if verb == "delete":
            body = await read_body(request) or {}
            pre = body.get("preconditions") or {} if isinstance(body, dict) else {}
            dry_run = dry_run or (isinstance(body, dict) and "All" in (body.get("dryRun") or []))
            kept = store.delete(
                t.kind,
                ns,
                t.name or "",
                dry_run=dry_run,
                precondition_rv=pre.get("resourceVersion"),
                precondition_uid=pre.get("uid"),
            )
            if kept is not None:
                return json_response(kept)
            return json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {"name": t.name, "group": t.kind.group, "kind": t.kind.plural},
                }
            )
        # deletecollection
        items, _ = store.list_objects(t.kind, ns, label_selector(q.get("labelSelector")))
        for obj in items:
            with contextlib.suppress(ApiError):
                store.delete(t.kind, obj["metadata"].get("namespace"), obj["metadata"]["name"], dry_run=dry_run)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})

    def watch(request: Request, t: Target, ns: str | None, matcher: Callable[[dict[str, Any]], bool]) -> Response:
        q = request.query_params
        try:
            replay, watcher = store.watch(t.kind, ns, q.get("resourceVersion"), matcher)
        except ApiError as err:
            if err.code != 410:
                raise
            server.stats["expiredWatches"] += 1
            # kube-apiserver answers 200 and streams one ERROR event carrying the 410 Status.
            error_line = json.dumps({"type": "ERROR", "object": err.status()}) + "\n"
            return Response(error_line, media_type="application/json")
        server.stats["watches"] += 1
        bookmarks = _flag(q.get("allowWatchBookmarks"))
        try:
            timeout = float(q.get("timeoutSeconds") or server.default_watch_timeout)
        except ValueError:
            store.unwatch(watcher)
            raise ApiError(400, "timeoutSeconds must be a number") from None
        cut = server.faults.take_watch_cut(t.kind.plural)
        kind = t.kind

        as_table = wants_table(request.headers.get("accept", ""))

        def line(ev: Event) -> bytes:
            # `kubectl get -w` watches as Table: each event carries a one-row Table, as kube-apiserver sends.
            obj = table(kind, [ev.obj], str(ev.rv), q.get("includeObject") or "Metadata") if as_table else ev.obj
            return (json.dumps({"type": ev.type, "object": obj}, separators=(",", ":")) + "\n").encode()

        def bookmark() -> bytes:
            obj = {
                "kind": kind.kind,
                "apiVersion": kind.api_version,
                "metadata": {"resourceVersion": str(store.rv)},
            }
            return (json.dumps({"type": "BOOKMARK", "object": obj}) + "\n").encode()

        async def stream() -> AsyncIterator[bytes]:
            sent = 0
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            try:
                pending: list[Event | None] = list(replay)
                while True:
                    if pending:
                        ev = pending.pop(0)
                    else:
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            if bookmarks:
                                yield bookmark()
                            return
                        wait = min(remaining, server.bookmark_interval) if bookmarks else remaining
                        try:
                            ev = await asyncio.wait_for(watcher.queue.get(), wait)
                        except TimeoutError:
                            if bookmarks and loop.time() < deadline:
                                yield bookmark()
                            continue
                    if ev is None:
                        if watcher.cut == "reset":
                            raise ConnectionAbortedError("watch cut by an injected fault")
                        return
                    yield line(ev)
                    sent += 1
                    if cut is not None and sent >= cut.after_events:
                        if cut.mode == "reset":
                            raise ConnectionAbortedError("watch cut by an injected fault")
                        return
            finally:
                store.unwatch(watcher)

        return StreamingResponse(stream(), media_type="application/json")

    # --- admin ----------------------------------------------------------------------------------

    async def admin_faults(request: Request) -> Response:
        if request.method == "DELETE":
            server.faults.clear()
            return JSONResponse({"cleared": True})
        if request.method == "GET":
            return JSONResponse(
                {
                    "rules": [
                        {
                            "id": r.id,
                            "code": r.code,
                            "count": r.count,
                            "hits": r.hits,
                            "verbs": sorted(r.verbs),
                            "resource": r.resource,
                            "name": r.name,
                        }
                        for r in server.faults.rules
                    ]
                }
            )
        body = await request.json()
        try:
            rule = server.faults.add(FaultSpec.from_json(body))
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"id": rule.id})

    async def admin_cut(request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        return JSONResponse({"cut": store.cut_watches(body.get("mode", "reset"))})

    async def admin_cut_after(request: Request) -> Response:
        from landscape.kubeapi.faults import WatchCut

        body = await request.json()
        server.faults.watch_cuts.append(
            WatchCut(
                int(body.get("afterEvents", 1)),
                int(body.get("watches", 1)),
                body.get("resource"),
                body.get("mode", "reset"),
            )
        )
        return JSONResponse({"ok": True})

    async def admin_compact(request: Request) -> Response:
        return JSONResponse({"floor": store.compact()})

    async def admin_settings(request: Request) -> Response:
        body = await request.json()
        if "bookmarkIntervalSeconds" in body:
            server.bookmark_interval = float(body["bookmarkIntervalSeconds"])
        if "historySize" in body:
            store.history_size = int(body["historySize"])
        return JSONResponse({"bookmarkIntervalSeconds": server.bookmark_interval, "historySize": store.history_size})

    async def admin_stats(request: Request) -> Response:
        return JSONResponse(
            {
                **server.stats,
                "resourceVersion": store.rv,
                "floor": store.floor,
                "objects": len(store.objects),
                "activeWatches": len(store.watchers),
            }
        )

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    routes = [
        Route("/version", version),
        Route("/version/", version),
        Route("/api", api),
        Route("/api/", api),
        Route("/apis", apis),
        Route("/apis/", apis),
        Route("/healthz", healthz),
        Route("/openapi/v2", openapi_v2),
        Route("/openapi/v3", openapi_v3),
        Route("/openapi/v3/{path:path}", openapi_v3),
        Route("/readyz", healthz),
        Route("/livez", healthz),
        Route("/admin/faults", admin_faults, methods=["GET", "POST", "DELETE"]),
        Route("/admin/watches/cut", admin_cut, methods=["POST"]),
        Route("/admin/watches/cut-after", admin_cut_after, methods=["POST"]),
        Route("/admin/compact", admin_compact, methods=["POST"]),
        Route("/admin/settings", admin_settings, methods=["POST"]),
        Route("/admin/stats", admin_stats),
        *server.admin_routes,
        Route("/{path:path}", resource, methods=methods),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(fn()) for fn in server.background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    return Starlette(routes=routes, lifespan=lifespan)


def build_server(plugins: list[str] | None = None, config: dict[str, Any] | None = None) -> ApiServer:
    """An ApiServer with the named plugin modules installed (each has ``install(server)``)."""
    server = ApiServer(plugin_config=dict(config or {}))
    paths = server.plugin_config.get("crds.paths")
    if paths:
        server.crds.load(paths if isinstance(paths, list) else str(paths).split(os.pathsep))
    for name in plugins or []:
        importlib.import_module(name).install(server)
    return server
