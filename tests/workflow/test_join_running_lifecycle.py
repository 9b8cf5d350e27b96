"""A step whose lifecycle id is already running joins that workflow instead of failing or starting a
second one (a second start of `server-provision-<id>` joins the first)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from definitions import queues
from definitions.runs import PipelineRequest, PipelineStatus, StepState
from tests.support import JoinArgs, pipeline, register_join_step
from tests.workflow.join_target import JoinTargetWorkflow
from workers.worker import build_workers

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("time-skipping")]


@pytest.fixture
async def client(ts_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    register_join_step()
    workers = build_workers(ts_env.client, [queues.PIPELINE], extra_workflows={queues.PIPELINE: [JoinTargetWorkflow]})
    async with workers[0]:
        yield ts_env.client


async def test_second_start_joins_the_running_workflow(client: Client) -> None:
    lifecycle_id = f"lifecycle-{uuid.uuid4().hex[:8]}"
    first = await client.start_workflow(JoinTargetWorkflow.run, JoinArgs(id=lifecycle_id, value=7),
                                        id=lifecycle_id, task_queue=queues.PIPELINE)
    run = await client.start_workflow("PipelineWorkflow", PipelineRequest(definition=pipeline(
        [{"name": "again", "uses": "test.join", "with": {"id": lifecycle_id, "value": 99}}],
        outputs={"joined": "steps.again.outputs.joined", "value": "steps.again.outputs.value"})),
        id=f"join-run-{uuid.uuid4().hex[:6]}", task_queue=queues.PIPELINE)
    for _ in range(100):
        st = await run.query("status", result_type=PipelineStatus)
        if st.steps[0].state is StepState.RUNNING:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    await first.signal(JoinTargetWorkflow.finish)
    result = await run.result()
    # The outputs are the first workflow's (value 7), not a second run's (value 99).
    assert result["outputs"] == {"joined": lifecycle_id, "value": 7}
    assert (await client.get_workflow_handle(lifecycle_id).describe()).run_id == first.result_run_id
