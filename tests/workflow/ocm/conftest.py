"""These tests end workflows while stand-in activities still run; on a shared time-skipping server
that leftover work can stop time skipping for every later test (BRIEF section 3). They get a
time-skipping server of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from landscape.temporal import time_skipping_server_path
from workers.config import data_converter


@pytest.fixture(scope="module")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(), test_server_existing_path=str(time_skipping_server_path()))
    try:
        yield env
    finally:
        await env.shutdown()
