"""Hostile bodies and slow senders get a 4xx with a reason (never 500, never accepted to fail later);
/readyz follows whether Temporal answers now."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from landscape.process import free_port
from landscape.temporal import time_skipping_server_path
from tests.triggers_support import ENV, bearer, gateway_config, library, signed, write_definitions
from triggers.app import create_app
from triggers.dispatch import LibraryCache, Planner
from triggers.temporal import TemporalConnection
from workers.config import TemporalSettings, data_converter

HOSTILE = {
    "nested 100k deep": b'{"inputs": {"message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
    "5,000-digit integer": b'{"inputs": {"message": "x", "count": ' + b"9" * 5000 + b"}}",
    "lone surrogate": b'{"inputs": {"message": "\\ud800"}}',
    "lone surrogate in a key": b'{"inputs": {"\\udfff": "x"}}',
    "overflowing number": b'{"inputs": {"message": "x", "count": 1e400}}',
    "NaN": b'{"inputs": {"message": "x", "count": NaN}}',
    "Infinity": b'{"inputs": {"message": "x", "count": -Infinity}}',
    "beyond int64": b'{"inputs": {"message": "x", "count": 9223372036854775808}}',
}


@pytest.fixture
async def gw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    dead = TemporalSettings(address=f"127.0.0.1:{free_port()}")
    app = create_app(
        gateway_config(maxBodyBytes=2_000_000, bodyTimeoutSeconds=0.5),
        temporal=TemporalConnection(lambda: dead),
        planner=Planner(LibraryCache(library(write_definitions(tmp_path)))),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield client


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_signed_json_is_400_with_a_reason(gw: httpx.AsyncClient, name: str) -> None:
    resp = await gw.post("/hooks/pipelines/hook-echo", **signed(HOSTILE[name]))
    assert resp.status_code == 400, (name, resp.status_code, resp.text[:300])
    body = resp.json()
    assert body["accepted"] is False and "not acceptable JSON" in body["error"], body


async def test_hostile_json_on_every_json_source(gw: httpx.AsyncClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for path, req in (
        ("/hooks/registry", bearer(deep)),
        ("/hooks/alerts", bearer(b'{"alerts": [1e400]}')),
        (
            "/hooks/releases",
            signed(b'{"specversion": "1.0", "data": NaN}', content_type="application/cloudevents+json"),
        ),
        ("/hooks/boot", signed(b'{"server": "\\ud800", "boot_id": "b"}')),
    ):
        resp = await gw.post(path, **req)
        assert 400 <= resp.status_code < 500, (path, resp.status_code, resp.text[:300])
        assert resp.status_code != 404 and resp.json()["error"]


async def test_cloudevent_base64_data_is_parsed_strictly(gw: httpx.AsyncClient) -> None:
    import base64

    event = {
        "specversion": "1.0",
        "id": "e1",
        "source": "ci",
        "type": "dev.apeiro.release.published",
        "datacontenttype": "application/json",
        "data_base64": base64.b64encode(b"[" * 5000 + b"]" * 5000).decode(),
    }
    resp = await gw.post("/hooks/releases", **signed(event, content_type="application/cloudevents+json"))
    assert resp.status_code == 400 and "nested deeper" in resp.json()["error"], resp.text


async def test_slow_body_times_out_with_408(gw: httpx.AsyncClient) -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"inputs": '
        await asyncio.sleep(2)
        yield b"{}}"

    started = time.monotonic()
    resp = await gw.post("/hooks/open/hook-echo", content=trickle(), headers={"content-type": "application/json"})
    assert resp.status_code == 408, resp.text
    assert "not received within 0.5 s" in resp.json()["error"]
    assert time.monotonic() - started < 1.9


async def test_readyz_follows_temporal_now(tmp_path: Path) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(), test_server_existing_path=str(time_skipping_server_path())
    )
    app = create_app(gateway_config(readyCacheSeconds=0.3), temporal=TemporalConnection(client=env.client))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
            assert (await http.get("/readyz")).status_code == 200
            await env.shutdown()
            await asyncio.sleep(0.4)  # past the cache
            started = time.monotonic()
            resp = await http.get("/readyz")
            assert resp.status_code == 503, resp.text
            assert "does not answer now" in resp.json()["error"]
            assert resp.headers["retry-after"]
            assert time.monotonic() - started < 3
    finally:
        await env.shutdown()
