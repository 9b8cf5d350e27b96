"""A dev-server worker for the gardener queue, against one landscape API server per test process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from landscape.gardener import samples
from landscape.kubeapi.admin import KubeApiAdmin
from landscape.kubeapi.part import KubeApiServer
from workers.gardener import contents
from workers.worker import workflow_runner


@pytest.fixture(scope="session")
def garden_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    part = KubeApiServer(settings={"gardener.speed": "3000"}, bookmark_interval=0.5)
    part.start(Path(tmp_path_factory.mktemp("garden")))
    try:
        samples.seed(part.url)
        yield part
    finally:
        part.stop()


@pytest.fixture(scope="session")
def garden_admin(garden_api: KubeApiServer) -> Iterator[KubeApiAdmin]:
    admin = KubeApiAdmin(garden_api.url)
    yield admin
    admin.close()


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
