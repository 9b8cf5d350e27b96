"""A dev-server worker for the gardener queue, against one landscape API server per test process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from tests.garden_fixtures import garden_admin_fixture, garden_api_fixture
from workers.gardener import contents
from workers.worker import workflow_runner

garden_api = garden_api_fixture("garden_api", bookmark_interval=0.5)
garden_admin = garden_admin_fixture("garden_admin", api="garden_api")


@pytest.fixture(scope="session")
async def gardener_queue(dev_client: Client) -> AsyncIterator[str]:
    queue = f"gardener-{uuid.uuid4().hex[:8]}"
    c = contents()
    worker = Worker(
        dev_client,
        task_queue=queue,
        workflows=list(c.workflows),
        activities=list(c.activities),
        workflow_runner=workflow_runner(),
    )
    async with worker:
        yield queue
