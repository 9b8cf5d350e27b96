"""Every workflow a worker serves fails fast on JSON that does not decode into its input model.

Operators start lifecycle workflows from the Temporal UI with typed JSON; a typo must fail the run
with the field's path, never leave a workflow task retrying forever while the UI shows Running.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from workers.queues import contents_for, known_queues
from workers.worker import build_workers

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("time-skipping")]

CASES = [(queue, wf.__temporal_workflow_definition.name)  # type: ignore[attr-defined]
         for queue in known_queues() for wf in contents_for(queue).workflows]


def test_every_queue_is_covered() -> None:
    assert {q for q, _ in CASES} == set(known_queues())


@pytest.mark.parametrize(("queue", "workflow_type"), CASES, ids=[f"{q}:{w}" for q, w in CASES])
async def test_junk_input_fails_the_workflow_not_the_task(ts_env: WorkflowEnvironment, queue: str,
                                                          workflow_type: str) -> None:
    workers = build_workers(ts_env.client, [queue])
    async with workers[0]:
        handle = await ts_env.client.start_workflow(
            workflow_type, {"definitelyNotAField": [1, 2, 3]}, id=f"junk-{uuid.uuid4().hex[:8]}", task_queue=queue)
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(handle.result(), timeout=60)
    message = str(info.value.cause)
    assert "definitelyNotAField" in message or "Field required" in message or "unknown field" in message, message
