"""The function `make demo` calls: a real gateway over HTTP and a schedule, each starting a pipeline run."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from definitions import queues
from triggers.demo import SCHEDULE_ID, show_triggers
from workers.worker import build_workers

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("triggers-dev")]


async def test_show_triggers_starts_one_workflow_by_webhook_and_one_by_schedule(dev_client: Client) -> None:
    lines: list[str] = []
    async with build_workers(dev_client, [queues.PIPELINE])[0]:
        demo = await show_triggers(dev_client, out=lines.append)
    assert demo.webhook_workflow_id.startswith("releases-")
    assert demo.schedule_workflow_id.startswith(SCHEDULE_ID)
    assert demo.webhook_result["state"] == "succeeded" and demo.schedule_result["state"] == "succeeded"
    assert demo.webhook_result["steps"][0]["name"] == "record_release"
    assert any("started" in line for line in lines)
    await dev_client.get_schedule_handle(SCHEDULE_ID).delete()
