"""Shared fixtures: Temporal test environments and the local landscape, one per test session.

- ``ts_env``: a time-skipping test server of the test's own (fast, skips timers; no Schedules, no
  listing). One per test, not per session: work a test leaves running (an activity nobody polls any
  more) locks time skipping on that server, and every later test's timers would then run in real time
  (BRIEF section 3). The server starts in about 0.15 s.
- ``dev_landscape`` / ``dev_client``: a headless Temporal dev server started by the same landscape code
  `apeiro dev up` uses, shared by every integration test in a pytest process.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from landscape.landscape import Landscape
from landscape.temporal import TemporalDevServer, time_skipping_server_path
from workers.config import data_converter

SHARED_TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"


@pytest.fixture
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(),
        test_server_existing_path=str(time_skipping_server_path()),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def dev_landscape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landscape]:
    state = tmp_path_factory.mktemp("landscape")
    landscape = Landscape([TemporalDevServer(headless=True, persistent=True)], state_dir=state)
    with landscape.running():
        yield landscape


@pytest.fixture(scope="session")
async def dev_client(dev_landscape: Landscape) -> Client:
    server = dev_landscape.part("temporal")
    return await Client.connect(server.endpoints["address"], data_converter=data_converter())


@pytest.fixture
def task_queue() -> str:
    """A task queue unique to one test, so workers of different tests never steal each other's tasks."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session", autouse=True)
async def close_shared_garden_clients() -> AsyncIterator[None]:
    """Close the garden API clients in-process workers shared (a real worker does this when it stops:
    workers/worker.py run_workers); otherwise aiohttp reports their sessions unclosed at exit."""
    yield
    import sys

    connections = sys.modules.get("activities.gardener.connections")
    if connections is not None:
        await connections.close_all()
