"""Graceful worker shutdown on the dev server: a short activity finishes on the stopping worker within
the grace period; a long (heartbeating) one is handed to the other worker at once and resumes from its
last heartbeat."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from landscape.temporal import TemporalDevServer
from workers.config import data_converter
from workers.shutdown import ShutdownHandoffInterceptor, shutdown_grace, stop_workers

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("reliability")]

LONG_S = 12.0
SHORT_S = 3.0
#: Side effects of the short call, per workflow: it must run exactly once.
SHORT_RUNS: dict[str, int] = {}


@activity.defn(name="test.short_call")
async def short_call(seconds: float) -> str:
    await asyncio.sleep(seconds)  # one slow API call, no heartbeat
    wid = activity.info().workflow_id or ""
    SHORT_RUNS[wid] = SHORT_RUNS.get(wid, 0) + 1
    return activity.client().identity


@activity.defn(name="test.long_progress")
async def long_progress(seconds: float) -> list[object]:
    """Sleep ``seconds`` in steps, heartbeating what is left; a later attempt sleeps only the rest."""
    details = activity.info().heartbeat_details
    left = start = float(details[-1]) if details else seconds
    while left > 0:
        activity.heartbeat(round(left, 2))
        step = min(left, 0.25)
        await asyncio.sleep(step)
        left -= step
    return [activity.client().identity, activity.info().attempt, start]


@workflow.defn(name="ShutdownProbe")
class ShutdownProbe:
    @workflow.run
    async def run(self) -> list[object]:
        short = workflow.execute_activity(short_call, SHORT_S, start_to_close_timeout=timedelta(seconds=15))
        long = workflow.execute_activity(
            long_progress,
            LONG_S,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=10),
        )
        a, b = await asyncio.gather(short, long)
        return [a, b]


def worker(client: Client, queue: str) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        workflows=[ShutdownProbe],
        activities=[short_call, long_progress],
        workflow_runner=UnsandboxedWorkflowRunner(),
        interceptors=[ShutdownHandoffInterceptor()],
        graceful_shutdown_timeout=shutdown_grace(),
    )


async def test_sigterm_lets_short_calls_finish_and_hands_long_activities_off(own_temporal: TemporalDevServer) -> None:
    queue = f"shutdown-{uuid.uuid4().hex[:8]}"
    a_client = await Client.connect(own_temporal.address, identity="worker-a", data_converter=data_converter())
    b_client = await Client.connect(own_temporal.address, identity="worker-b", data_converter=data_converter())
    a = worker(a_client, queue)
    a_run = asyncio.create_task(a.run())
    handle = await a_client.start_workflow(ShutdownProbe.run, id=f"probe-{queue}", task_queue=queue)
    await asyncio.sleep(2.5)  # both activities run on worker a, the long one has made progress
    b = worker(b_client, queue)
    async with b:
        stopping_at = datetime.now(UTC)
        t0 = time.monotonic()
        await stop_workers([a])
        stop_seconds = time.monotonic() - t0
        await a_run
        result: list[Any] = await asyncio.wait_for(handle.result(), 60)
    short_identity, (long_identity, long_attempt, resumed_at) = result

    # The short call finished on the stopping worker, once, and the worker waited for it (not for
    # the long activity, which it handed off).
    assert short_identity == "worker-a"
    assert SHORT_RUNS[handle.id] == 1
    assert stop_seconds < SHORT_S, stop_seconds
    # The long one continued on worker b in its second attempt, right away, from its last heartbeat.
    assert (long_identity, long_attempt) == ("worker-b", 2)
    assert resumed_at < LONG_S - 0.5, resumed_at  # resumed from the progress of attempt 1
    started = [
        e
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.attempt == 2
    ]
    assert len(started) == 1
    waited = started[0].event_time.ToDatetime(tzinfo=UTC) - stopping_at
    assert waited < timedelta(seconds=3), waited
