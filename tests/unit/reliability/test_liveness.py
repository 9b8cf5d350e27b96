"""Keep-alive heartbeats (activities/liveness.py) and the worker's shutdown settings (workers/shutdown.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities import liveness
from activities.liveness import keep_alive, keep_alive_sync, kept_alive_sync, sleep_heartbeating
from workers.shutdown import GRACE_ENV, recovery_options, shutdown_grace
from workflows.activity_options import HEARTBEAT_TIMEOUT, MAX_HEARTBEAT_TIMEOUT, capped_heartbeat


async def test_keep_alive_repeats_the_latest_progress_while_a_slow_call_runs() -> None:
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    progress = {"offset": 1}

    async def slow() -> None:
        async with keep_alive(lambda: dict(progress), interval_s=0.05):
            await asyncio.sleep(0.12)
            progress["offset"] = 2
            await asyncio.sleep(0.12)

    await env.run(slow)
    assert len(beats) >= 3
    assert beats[0] == ({"offset": 1},) and beats[-1] == ({"offset": 2},)


def test_sync_helpers_heartbeat_from_the_activity_thread_and_a_helper_thread() -> None:
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)

    def waits() -> None:
        sleep_heartbeating(0.12, {"state": "Off"}, interval_s=0.05)
        with keep_alive_sync(lambda: "system-1", interval_s=0.05):
            time.sleep(0.12)

    env.run(waits)
    assert ({"state": "Off"},) in beats and ("system-1",) in beats


def test_a_block_shorter_than_the_interval_sends_no_heartbeat() -> None:
    """The SDK forwards an attempt's first heartbeat to the server at once: a short read must not
    cost the server a heartbeat (issue 15: one per BMC of a discovery)."""
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)

    def short_then_long() -> None:
        with keep_alive_sync(lambda: "short", interval_s=0.2):
            time.sleep(0.02)
        with keep_alive_sync(lambda: "long", interval_s=0.05):
            time.sleep(0.08)

    env.run(short_then_long)
    assert ("short",) not in beats
    assert beats and beats[0] == ("long",)


def test_a_kept_alive_step_heartbeats_while_it_blocks_and_keeps_its_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    """``@kept_alive_sync`` (the provisioning steps): the whole call is kept alive, and Temporal still
    sees the step's own parameter types (the activity's input model is decoded from them)."""
    import typing

    from activities.redfish.activities import RedfishActivities
    from definitions.server.messages import BootRequest

    monkeypatch.setattr(liveness, "INTERVAL_S", 0.05)  # the decorator uses the default interval
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)

    @kept_alive_sync
    def step(seconds: float) -> str:
        time.sleep(seconds)
        return "done"

    assert env.run(step, 0.15) == "done"
    assert len(beats) >= 2
    assert typing.get_type_hints(RedfishActivities.set_boot)["req"] is BootRequest


def test_outside_an_activity_the_helpers_only_wait() -> None:
    sleep_heartbeating(0.01)
    with keep_alive_sync():
        pass


def test_grace_period_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GRACE_ENV, raising=False)
    assert shutdown_grace() == timedelta(seconds=10)
    monkeypatch.setenv(GRACE_ENV, "2.5")
    assert recovery_options()["graceful_shutdown_timeout"] == timedelta(seconds=2.5)
    monkeypatch.setenv(GRACE_ENV, "soon")
    with pytest.raises(ValueError, match="APEIRO_SHUTDOWN_GRACE_SECONDS"):
        shutdown_grace()


def test_step_type_heartbeat_timeouts_are_capped() -> None:
    assert capped_heartbeat(timedelta(minutes=2)) == MAX_HEARTBEAT_TIMEOUT
    assert capped_heartbeat(timedelta(seconds=5)) == timedelta(seconds=5)
    assert capped_heartbeat(None) is None
    assert HEARTBEAT_TIMEOUT <= MAX_HEARTBEAT_TIMEOUT <= timedelta(seconds=15)


def test_every_registered_step_type_heartbeats_within_15_seconds() -> None:
    from definitions.catalog import load_catalog

    for st in load_catalog().all():
        if st.heartbeat_timeout is not None:
            assert st.heartbeat_timeout <= MAX_HEARTBEAT_TIMEOUT, st.name
