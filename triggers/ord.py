"""The gateway's ORD routes: the configuration at `/.well-known/open-resource-discovery`, the document
and its resource definitions, each with `Cache-Control` and a strong `ETag` (`If-None-Match` -> 304)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from triggers import ord_document as ordd

CACHE_CONTROL = "public, max-age=300"


def cached_json(request: Request, body: Any) -> Response:
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    etag = f'"{hashlib.sha256(raw).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    wanted = [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]
    if etag in wanted or "*" in wanted:
        return Response(status_code=304, headers=headers)
    return Response(raw, media_type="application/json", headers=headers)


def _krm() -> dict[str, Any]:
    from definitions.mesh import GROUP, VERSION, kinds
    from definitions.mesh_manifests import open_api_schema

    ks = kinds()
    return ordd.krm_openapi(
        {k.kind: open_api_schema(k) for k in ks},
        GROUP,
        VERSION,
        {k.kind: k.scope == "Namespaced" for k in ks},
        {k.kind: k.plural for k in ks},
    )


def _kinds() -> list[str]:
    from definitions.mesh import kinds

    return [k.kind for k in kinds()]


def ord_router(app: FastAPI) -> APIRouter:
    router = APIRouter(tags=["ord"])

    def openapi() -> dict[str, Any]:
        return app.openapi()  # looked up per call: create_app replaces app.openapi after adding routes

    @router.get("/.well-known/open-resource-discovery", include_in_schema=False)
    async def configuration(request: Request) -> Response:
        return cached_json(request, ordd.configuration(str(request.base_url)))

    @router.get(ordd.DOCUMENT_URL, include_in_schema=False)
    async def document(request: Request) -> Response:
        return cached_json(request, ordd.document(_kinds()))

    @router.get(ordd.DEFINITIONS["webhooks"], include_in_schema=False)
    async def webhooks(request: Request) -> Response:
        return cached_json(request, ordd.split_openapi(openapi(), operations=False))

    @router.get(ordd.DEFINITIONS["gateway"], include_in_schema=False)
    async def gateway(request: Request) -> Response:
        return cached_json(request, ordd.split_openapi(openapi(), operations=True))

    @router.get(ordd.DEFINITIONS["krm"], include_in_schema=False)
    async def krm(request: Request) -> Response:
        return cached_json(request, _krm())

    @router.get(ordd.DEFINITIONS["events"], include_in_schema=False)
    async def events(request: Request) -> Response:
        from definitions.runs import StepState

        return cached_json(request, ordd.run_events_asyncapi([s.value for s in StepState]))

    return router
