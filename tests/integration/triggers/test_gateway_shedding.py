"""A gateway flooded past its admission bound answers 503 + Retry-After instead of timing out, and
nothing it accepted is lost: every distinct event ends with exactly one workflow once the shed
deliveries are sent again."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from tests.triggers_support import ENV, gateway_config, library, signed, write_definitions
from triggers.app import create_app
from triggers.dispatch import LibraryCache, Planner
from triggers.temporal import TemporalConnection

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("triggers-dev")]


@pytest.fixture
async def gw(dev_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    app = create_app(
        gateway_config(),
        temporal=TemporalConnection(client=dev_client),
        planner=Planner(LibraryCache(library(write_definitions(tmp_path)))),
        max_in_flight=3,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw", timeout=30) as c:
        yield c


async def test_flood_is_shed_with_503_and_every_event_gets_exactly_one_workflow(
    gw: httpx.AsyncClient, dev_client: Client
) -> None:
    run = uuid.uuid4().hex[:6]
    events = [f"flood-{run}-{i}" for i in range(28)]
    deliveries = events + events[:12]  # 30% duplicates

    async def deliver(event: str) -> httpx.Response:
        return await gw.post("/hooks/pipelines/hook-echo", **signed({"inputs": {"message": event}, "eventId": event}))

    t0 = time.monotonic()
    answers = await asyncio.gather(*(deliver(e) for e in deliveries))
    flood_seconds = time.monotonic() - t0
    shed = [(e, a) for e, a in zip(deliveries, answers, strict=True) if a.status_code == 503]
    accepted = {
        e: a.json()["workflows"][0]["workflow_id"]
        for e, a in zip(deliveries, answers, strict=True)
        if a.status_code == 202
    }
    assert shed, "the flood went past the bound of 3 in flight"
    assert all(a.headers.get("retry-after") == "1" and a.json()["accepted"] is False for _, a in shed)
    assert {a.status_code for a in answers} <= {202, 503}, "answered, never timed out or failed"
    assert flood_seconds < 20
    # The senders retry what was shed (same event id); it gets in once the flood has passed.
    pending = [e for e, _ in shed]
    for _ in range(20):
        if not pending:
            break
        await asyncio.sleep(1)
        again = await asyncio.gather(*(deliver(e) for e in pending))
        for e, a in zip(pending, again, strict=True):
            if a.status_code == 202:
                wid = a.json()["workflows"][0]["workflow_id"]
                assert accepted.setdefault(e, wid) == wid, "a retry of an accepted event names the same workflow"
        pending = [e for e, a in zip(pending, again, strict=True) if a.status_code != 202]
    assert not pending
    assert set(accepted) == set(events)
    assert len(set(accepted.values())) == len(events), "one workflow per distinct event"
    for wid in set(accepted.values()):
        desc = await dev_client.get_workflow_handle(wid).describe()
        assert desc.workflow_type == "PipelineWorkflow"
