"""The console as an ASGI app (FastAPI): two pages and a small JSON API they poll.

`apeiro console` serves it alone; the webhook gateway mounts it at ``/console/`` when
``APEIRO_CONSOLE=1`` (:func:`mount`). All links are relative, so it works under any prefix.

The run page follows ``/api/run/stream`` (server-sent events: the run view each time it changes,
``problem`` events while Temporal cannot be reached, ``end`` once the run has ended); a browser
without EventSource polls ``/api/run`` instead.

Temporal down: the API answers 503 with the reason, the page shows it in a banner and keeps
polling, and recovers by itself once Temporal answers again (the client reconnects).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from temporalio.service import RPCError, RPCStatusCode

from definitions.runquery import STATES, RunFilter
from triggers.console import data
from triggers.console.auth import ConsoleAuth, Unauthenticated
from triggers.console.render import GraphvizMissing, status_dot, to_svg
from triggers.events import HookError
from triggers.temporal import TemporalConnection

log = logging.getLogger(__name__)

STREAM_INTERVAL = 1.0  # seconds between two looks at a run for its event stream
STREAM_KEEPALIVE = 15.0  # a comment line at least this often, so proxies keep the stream open
STREAM_MAX_SECONDS = 600.0  # then the stream ends and the browser reconnects (bounds a stale stream)


def _static(name: str) -> str:
    return resources.files("triggers.console").joinpath("static").joinpath(name).read_text()


def ui_base(explicit: str | None = None) -> str:
    base = explicit or os.environ.get("APEIRO_UI_URL")
    if not base:
        host = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233").rsplit(":", 1)[0]
        base = f"http://{host}:8233"
    return base.rstrip("/")


def create_console(
    temporal: TemporalConnection | None = None, auth: ConsoleAuth | None = None, ui_url: str | None = None
) -> FastAPI:
    temporal = temporal or TemporalConnection()
    auth = auth or ConsoleAuth.from_env()
    app = FastAPI(title="Apeiro console", version="1", docs_url=None, redoc_url=None)
    app.state.temporal = temporal

    async def client_or_503() -> Any:
        return await temporal.get()

    def unavailable(exc: BaseException) -> JSONResponse:
        if isinstance(exc, RPCError) and exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            temporal.reset()
        reason = exc.reason if isinstance(exc, HookError) else str(exc)
        return JSONResponse({"error": f"Temporal is not reachable: {reason}"}, status_code=503)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(_static("index.html"))

    @app.get("/run", response_class=HTMLResponse, include_in_schema=False)
    async def run_page(id: str) -> HTMLResponse:
        try:
            client = await client_or_503()
            await data._describe(client.get_workflow_handle(id))
        except data.RunNotFound:
            page = _static("notfound.html").replace("{{ID}}", _html(id))
            return HTMLResponse(page, status_code=404)
        except (HookError, RPCError):
            pass  # the page itself shows Temporal's state and recovers
        return HTMLResponse(_static("run.html"))

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        kinds = {"console.js": "text/javascript", "console.css": "text/css"}
        if name not in kinds:
            return Response(status_code=404)
        return Response(_static(name), media_type=kinds[name])

    @app.get("/api/config")
    async def config() -> dict[str, Any]:
        return {
            "ui": ui_base(ui_url),
            "namespace": temporal.namespace,
            "states": sorted(STATES),
            "auth": {"header": bool(auth.identity_header), "tokens": bool(auth.tokens)},
        }

    @app.get("/api/whoami")
    async def whoami(request: Request) -> JSONResponse:
        try:
            return JSONResponse({"identity": auth.identify(_headers(request))})
        except Unauthenticated as exc:
            return JSONResponse({"identity": None, "why": str(exc), "tokens": bool(auth.tokens)}, status_code=401)

    @app.get("/api/runs")
    async def list_runs(
        pipeline: str | None = None, site: str | None = None, state: str | None = None, limit: int = 100
    ) -> JSONResponse:
        run_filter = RunFilter(pipeline=pipeline or None, site=site or None, state=state or None)
        try:
            run_filter.query()
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            rows = await data.runs(await client_or_503(), run_filter, limit=min(max(limit, 1), 500))
        except (HookError, RPCError) as exc:
            if isinstance(exc, RPCError) and exc.status == RPCStatusCode.INVALID_ARGUMENT:
                return JSONResponse({"error": f"{exc.message} (are the search attributes registered?)"}, 400)
            return unavailable(exc)
        return JSONResponse({"runs": [r.model_dump(mode="json") for r in rows]})

    async def run_body(id: str) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of one run view, as /api/run answers and the stream sends it."""
        try:
            v = await data.view(await client_or_503(), id)
        except data.RunNotFound:
            return 404, {"error": f"no run with id {id!r}"}
        except (HookError, RPCError) as exc:
            response = unavailable(exc)
            return response.status_code, json.loads(bytes(response.body))
        body = v.model_dump(mode="json")
        body["ui"] = f"{ui_base(ui_url)}/namespaces/{temporal.namespace}/workflows/{id}"
        return 200, body

    @app.get("/api/run")
    async def run(id: str) -> JSONResponse:
        code, body = await run_body(id)
        return JSONResponse(body, status_code=code)

    @app.get("/api/run/stream")
    async def run_stream(id: str, request: Request, interval: float = STREAM_INTERVAL) -> StreamingResponse:
        """Server-sent events: the run view whenever it changes (checked every `interval` seconds)."""
        interval = min(max(interval, 0.2), 10.0)

        async def events() -> AsyncIterator[str]:
            yield f"retry: {int(interval * 1000)}\n\n"
            last, quiet, until = "", 0.0, time.monotonic() + STREAM_MAX_SECONDS
            while time.monotonic() < until and not await request.is_disconnected():
                code, body = await run_body(id)
                text = json.dumps(body, separators=(",", ":"))
                if code != 200:
                    if text != last:
                        yield f"event: problem\ndata: {text}\n\n"
                    if code == 404:
                        yield "event: end\ndata: {}\n\n"
                        return
                elif text != last:
                    yield f"data: {text}\n\n"
                    quiet = 0.0
                elif quiet >= STREAM_KEEPALIVE:
                    yield ": keep-alive\n\n"  # proxies close idle connections
                    quiet = 0.0
                last = text
                if code == 200 and body.get("execution") != "running":
                    yield "event: end\ndata: {}\n\n"  # a closed run does not change any more
                    return
                await asyncio.sleep(interval)
                quiet += interval

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.get("/api/graph")
    async def graph(id: str) -> Response:
        try:
            client = await client_or_503()
            pipeline = await data.definition(client, id)
            v = await data.view(client, id)
            svg = await to_svg(status_dot(pipeline, v.status))
        except data.RunNotFound:
            return JSONResponse({"error": f"no run with id {id!r}"}, status_code=404)
        except data.ActionRefused as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except GraphvizMissing as exc:
            return JSONResponse({"error": str(exc)}, status_code=500)
        except (HookError, RPCError) as exc:
            return unavailable(exc)
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    @app.post("/api/action")
    async def action(id: str, action: str, body: data.ActionRequest, request: Request) -> JSONResponse:
        try:
            actor = auth.identify(_headers(request))
        except Unauthenticated as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        try:
            result = await data.act(
                await client_or_503(), id, action, actor, body, search_attributes_ok=bool(temporal.search_attributes_ok)
            )
        except data.RunNotFound:
            return JSONResponse({"error": f"no run with id {id!r}"}, status_code=404)
        except data.ActionRefused as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except (HookError, RPCError) as exc:
            return unavailable(exc)
        log.info("console: %s %s on %s by %s (%s)", action, body.step or "", id, actor, body.reason)
        return JSONResponse(result)

    return app


def mount(app: FastAPI, path: str = "/console") -> None:
    """Serve the console inside another app (the webhook gateway), sharing its Temporal connection."""
    temporal = getattr(getattr(app.state, "gateway", None), "temporal", None)
    app.mount(path, create_console(temporal=temporal))


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def _html(text: str) -> str:
    import html

    return html.escape(text, quote=True)
