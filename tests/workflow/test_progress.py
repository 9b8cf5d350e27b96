"""Lifecycle workflows show progress on the Temporal UI's run page: current details (a Markdown
table of activities and children and how they ended) and a summary on every activity."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflow.progress_target import ProgressTargetWorkflow, progress_step
from workers.progress import ProgressInterceptor
from workers.worker import workflow_runner

pytestmark = pytest.mark.workflow


async def test_lifecycle_workflow_publishes_details_and_summaries(ts_env: WorkflowEnvironment) -> None:
    queue = f"progress-{uuid.uuid4().hex[:6]}"
    async with Worker(
        ts_env.client,
        task_queue=queue,
        workflows=[ProgressTargetWorkflow],
        activities=[progress_step],
        interceptors=[ProgressInterceptor()],
        workflow_runner=workflow_runner(),
    ):
        h = await ts_env.client.start_workflow(ProgressTargetWorkflow.run, id=f"p-{queue}", task_queue=queue)
        details = ""
        for _ in range(100):
            meta = await h.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
            details = meta.current_details
            if "failed" in details:
                break
            await asyncio.sleep(0.1)
        assert "**ProgressTargetWorkflow**" in details
        assert "| test.progress_step · first | activity | succeeded |" in details
        assert "| test.progress_step · second | activity | failed |" in details
        await h.signal(ProgressTargetWorkflow.proceed)
        assert await h.result() == "ok"
        history = await h.fetch_history()
        scheduled = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
        summaries = [
            (await ts_env.client.data_converter.decode([e.user_metadata.summary], [str]))[0] for e in scheduled
        ]
        assert summaries == ["test.progress_step · first", "test.progress_step · second"]
