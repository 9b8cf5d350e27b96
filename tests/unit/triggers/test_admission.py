"""The admission limit: deliveries beyond the bound get 503 + Retry-After at once, without their body
being read; admitted ones finish; health and metrics are never shed."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from triggers.admission import AdmissionLimit


class Slow:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.two_inside = asyncio.Event()
        self.bodies_read = 0

    async def hook(self, request: Request) -> JSONResponse:
        await request.body()
        self.bodies_read += 1
        if self.bodies_read == 2:
            self.two_inside.set()
        await self.release.wait()
        return JSONResponse({"accepted": True}, status_code=202)

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})


def _client(slow: Slow, limit: int, shed: list[str]) -> tuple[httpx.AsyncClient, AdmissionLimit]:
    app = Starlette(routes=[Route("/hooks/x", slow.hook, methods=["POST"]), Route("/healthz", slow.health)])
    guarded = AdmissionLimit(app, max_in_flight=limit, retry_after=2, on_shed=shed.append)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://gw"), guarded


async def test_beyond_the_bound_answers_503_with_retry_after_at_once() -> None:
    slow, shed = Slow(), list[str]()
    client, guard = _client(slow, 2, shed)
    async with client:
        admitted = [asyncio.create_task(client.post("/hooks/x", content=b"{}")) for _ in range(2)]
        await asyncio.wait_for(slow.two_inside.wait(), timeout=5)
        extra = await asyncio.wait_for(client.post("/hooks/x", content=b"{}"), timeout=2)
        assert extra.status_code == 503 and extra.headers["retry-after"] == "2"
        assert extra.json()["accepted"] is False and "send it again" in extra.json()["error"]
        assert (await client.get("/healthz")).status_code == 200, "health is never shed"
        assert slow.bodies_read == 2, "a shed delivery's body is never read"
        slow.release.set()
        assert [r.status_code for r in await asyncio.gather(*admitted)] == [202, 202]
        assert (await client.post("/hooks/x", content=b"{}")).status_code == 202, "room again once they finish"
    assert shed == ["/hooks/x"] and guard.shed == 1 and guard.peak == 2 and guard.in_flight == 0


async def test_in_flight_is_released_when_the_app_fails() -> None:
    async def boom(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("handler crashed")

    guard = AdmissionLimit(boom, max_in_flight=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://gw") as client:
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await client.post("/hooks/x", content=b"{}")
    assert guard.in_flight == 0 and guard.shed == 0


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        AdmissionLimit(lambda *a: None, max_in_flight=0)  # type: ignore[arg-type]
