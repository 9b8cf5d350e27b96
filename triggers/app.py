"""The webhook gateway as an ASGI app (FastAPI): one POST route per configured route, plus
``/openapi.json`` (and ``/docs``), ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``.

Order of checks for every delivery, cheapest first: body size (413), authentication over the raw
body (401), content type and payload (415/400/422), rules and target validation (404/422), then
Temporal (202; 503 with Retry-After when Temporal cannot be reached). Bad input never gives 500: a
500 is a bug in the gateway and is logged with its traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from definitions.triggers import GatewayConfig, Route
from triggers import admission
from triggers.auth import KeyCache, verify
from triggers.dispatch import Outcome, Planned, Planner, execute
from triggers.events import HookError
from triggers.metrics import GatewayMetrics
from triggers.sources import get_source
from triggers.sources.base import Source
from triggers.temporal import TemporalConnection

log = logging.getLogger(__name__)


class Gateway:
    """State shared by the routes: config, keys, planner, Temporal connection, metrics."""

    def __init__(
        self,
        config: GatewayConfig,
        temporal: TemporalConnection | None = None,
        planner: Planner | None = None,
        keys: KeyCache | None = None,
    ) -> None:
        self.config = config
        self.temporal = temporal or TemporalConnection()
        self.planner = planner or Planner()
        self.keys = keys or KeyCache(ttl=config.key_cache_seconds)
        self.metrics = GatewayMetrics()
        #: Workflow ids this process started recently: a redelivery while the run is still open is
        #: reported as "existing" (Temporal's "use existing" answer does not say which it was).
        self.recent: OrderedDict[str, None] = OrderedDict()

    def ui_link(self, workflow_id: str) -> str:
        base = self.config.ui_url or os.environ.get("APEIRO_UI_URL")
        if not base:
            host = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233").rsplit(":", 1)[0]
            base = f"http://{host}:8233"
        return f"{base.rstrip('/')}/namespaces/{self.temporal.namespace}/workflows/{workflow_id}"

    async def read_body(self, request: Request, limit: int) -> bytes:
        """The raw body, refused past ``limit`` bytes (413) or past the read deadline (408).

        The deadline covers the whole body, so a sender trickling one byte a second cannot hold a
        connection and a buffer open for ever.
        """
        deadline = self.config.body_timeout_seconds
        try:
            async with asyncio.timeout(deadline):
                return await self._read_body(request, limit)
        except TimeoutError:
            raise HookError(
                408, f"the body was not received within {deadline:g} s; send it in one go", outcome="timeout"
            ) from None

    async def _read_body(self, request: Request, limit: int) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise HookError(400, "Content-Length is not a number") from None
            if declared > limit:
                raise HookError(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HookError(413, f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _remember(self, outcome: Outcome, keep: int = 10000) -> Outcome:
        if outcome.action != "started":
            return outcome
        if outcome.workflow_id in self.recent:
            self.recent.move_to_end(outcome.workflow_id)
            outcome.action = "existing"
            return outcome
        self.recent[outcome.workflow_id] = None
        if len(self.recent) > keep:
            self.recent.popitem(last=False)
        return outcome

    async def handle(self, route: Route, source: Source, request: Request) -> dict[str, Any]:
        limit = route.max_body_bytes or self.config.max_body_bytes
        body = await self.read_body(request, limit)
        headers: Mapping[str, str] = {k.lower(): v for k, v in request.headers.items()}
        verify(route.auth, headers, body, self.keys)
        events = source.parse(body, headers, dict(request.path_params))
        rules = route.rules or source.default_rules()
        plans: list[Planned] = []
        ignored: list[dict[str, str]] = []
        for event in events:
            rule = self.planner.match(rules, event)
            if rule is None:
                ignored.append({"event_id": event.id, "reason": "no rule of the route matches this event"})
                self.metrics.events.labels(route.name, "ignored").inc()
                continue
            plans.append(self.planner.plan(route, rule, event))
            self.metrics.events.labels(route.name, "matched").inc()
        outcomes: list[Outcome] = []
        if plans:
            client = await self.temporal.get()
            for plan in plans:
                outcome = await execute(client, plan, search_attributes_ok=bool(self.temporal.search_attributes_ok))
                outcome = self._remember(outcome)
                self.metrics.workflows.labels(route.name, outcome.action).inc()
                outcomes.append(outcome)
        return {
            "accepted": True,
            "route": route.name,
            "events": len(events),
            "workflows": [
                {
                    "event_id": o.event_id,
                    "rule": o.rule,
                    "workflow_id": o.workflow_id,
                    "action": o.action,
                    "ui": self.ui_link(o.workflow_id),
                }
                for o in outcomes
            ],
            "ignored": ignored,
        }


def _error_response(exc: HookError) -> JSONResponse:
    body: dict[str, Any] = {"accepted": False, "status": exc.status, "error": exc.reason}
    if exc.details:
        body["details"] = exc.details
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def _endpoint(gateway: Gateway, route: Route, source: Source) -> Any:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            answer = await gateway.handle(route, source, request)
            response: Response = JSONResponse(answer, status_code=202)
            outcome = "accepted" if answer["workflows"] else "ignored"
        except HookError as exc:
            response, outcome = _error_response(exc), exc.outcome
            if exc.status >= 500:
                log.warning("route %s: %s %s", route.name, exc.status, exc.reason)
        except Exception:
            log.exception("route %s: internal error (a gateway bug, not the sender's fault)", route.name)
            response, outcome = (
                JSONResponse({"accepted": False, "status": 500, "error": "internal gateway error"}, status_code=500),
                "error",
            )
        gateway.metrics.requests.labels(route.name, outcome, str(response.status_code)).inc()
        gateway.metrics.latency.labels(route.name).observe(time.perf_counter() - started)
        return response

    endpoint.__name__ = f"hook_{route.name.replace('-', '_')}"
    return endpoint


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "accepted": {"const": False},
        "status": {"type": "integer"},
        "error": {"type": "string"},
        "details": {"type": "array"},
    },
}
_ACCEPTED_SCHEMA = {
    "type": "object",
    "properties": {
        "accepted": {"const": True},
        "route": {"type": "string"},
        "events": {"type": "integer"},
        "workflows": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "event_id": {"type": "string"},
                    "rule": {"type": "string"},
                    "workflow_id": {"type": "string"},
                    "action": {"enum": ["started", "existing", "signalled", "signal-with-start"]},
                    "ui": {"type": "string"},
                },
            },
        },
        "ignored": {"type": "array"},
    },
}
_ERRORS = {
    "400": "malformed body (not JSON, malformed CloudEvent)",
    "408": "the body was not received within bodyTimeoutSeconds",
    "401": "missing or wrong signature/token, or a timestamp outside the window",
    "404": "unknown pipeline, or no workflow waits for the signal",
    "413": "body larger than the route's limit",
    "415": "content type not accepted by this source",
    "422": "payload or derived workflow inputs fail validation",
    "502": "Temporal refused the request",
    "503": "Temporal (or a key) is unreachable: retry later, see Retry-After; nothing was started",
}


def _auth_text(route: Route) -> str:
    kind = route.auth.type
    if kind == "hmac":
        return (
            f"Authentication: HMAC-SHA256 signature in `{route.auth.header}: t=<unix>,v1=<hex>` over "  # type: ignore[union-attr]
            "`<t>.<body>`, timestamp within the window."
        )
    if kind == "bearer":
        return "Authentication: `Authorization: Bearer <token>`."
    return "Authentication: none (trusted network only)."


def _openapi_extra(route: Route, source: Source, schemas: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if source.payload_model is not None:
        schema = source.payload_model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[source.payload_model.__name__] = schema
        for ct in source.content_types:
            content[ct] = {"schema": {"$ref": f"#/components/schemas/{source.payload_model.__name__}"}}
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in source.path_params
    ]
    params += [
        {"name": h, "in": "header", "required": False, "schema": {"type": "string"}} for h in source.header_params
    ]
    responses: dict[str, Any] = {
        "202": {
            "description": "accepted: workflows started or signalled",
            "content": {"application/json": {"schema": _ACCEPTED_SCHEMA}},
        }
    }
    for code, text in _ERRORS.items():
        responses[code] = {"description": text, "content": {"application/json": {"schema": _ERROR_SCHEMA}}}
    extra: dict[str, Any] = {"requestBody": {"required": True, "content": content}, "responses": responses}
    if params:
        extra["parameters"] = params
    return extra


def create_app(
    config: GatewayConfig,
    *,
    temporal: TemporalConnection | None = None,
    planner: Planner | None = None,
    keys: KeyCache | None = None,
    max_in_flight: int | None = None,
) -> FastAPI:
    gateway = Gateway(config, temporal=temporal, planner=planner, keys=keys)
    app = FastAPI(
        title="Apeiro webhook gateway",
        version="1",
        description="Starts and signals Apeiro workflows from webhooks. Every route answers 202 with "
        "the workflow ids it started (idempotent per event id) or an error with a reason.",
    )
    app.state.gateway = gateway
    schemas: dict[str, Any] = {}
    for route in config.routes:
        source = get_source(route.source)
        path = route.path or source.default_path(route.name)
        rules = route.rules or source.default_rules()
        description = (
            f"{(source.description or '').strip()}\n\n{_auth_text(route)}\n\nRules: "
            + ", ".join(f"`{r.name}` when `{r.when}`" for r in rules)
            + "\n\n"
            + route.description
        )
        app.add_api_route(
            path,
            _endpoint(gateway, route, source),
            methods=["POST"],
            status_code=202,
            summary=f"{route.name}: {source.summary}",
            description=description,
            tags=[source.name],
            openapi_extra=_openapi_extra(route, source, schemas),
            response_model=None,
        )

    @app.get("/healthz", tags=["gateway"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["gateway"], responses={503: {"description": "Temporal unreachable"}})
    async def readyz() -> Response:
        """Ready only while Temporal answers now (a health check, cached for ``readyCacheSeconds``)."""
        try:
            await gateway.temporal.ready(gateway.config.ready_cache_seconds)
        except HookError as exc:
            return _error_response(exc)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["gateway"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = original()
            doc.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    from triggers.ord import ord_router

    app.include_router(ord_router(app))  # Open Resource Discovery (triggers/ord.py)
    # Past its knee the gateway answers 503 + Retry-After instead of queueing until senders time out.
    settings = admission.from_env()
    if max_in_flight:
        settings["max_in_flight"] = max_in_flight
    gateway.metrics.admission_limit.set(settings["max_in_flight"])
    app.add_middleware(
        admission.AdmissionLimit,
        **settings,
        on_shed=lambda path: gateway.metrics.requests.labels(route=path, outcome="shed", status="503").inc(),
        on_limit=gateway.metrics.admission_limit.set,
    )
    if os.environ.get("APEIRO_CONSOLE", "").strip().lower() in ("1", "true", "yes"):
        # The operator's console at /console/, sharing the gateway's Temporal connection.
        from triggers.console.app import mount

        mount(app)
    return app
