"""Issue 17 on the real Temporal dev server, which (unlike the time-skipping test server) refuses
oversized requests: 150 steps of 30 KB outputs (4.5 MB in all; carried whole across continue-as-new
they broke the 4 MB gRPC message limit, and the workflow task failed on every retry) continue as new
and complete; a run whose later step reads 2 MB of outputs fails with the limit instead."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError

from definitions import queues
from definitions.runs import PipelineRequest, PipelineResult
from tests.support import pipeline
from tests.workflow.limits.support import assert_no_task_failures, blob, register_blob_step
from workers.worker import build_workers
from workflows.stepexec import describe_failure

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dev-server")]


@pytest.fixture
async def blob_worker(dev_client: Client) -> AsyncIterator[Client]:
    register_blob_step()
    workers = build_workers(dev_client, [queues.PIPELINE], extra_activities={queues.PIPELINE: [blob]})
    async with workers[0]:
        yield dev_client


def blobs(n: int, size: int = 25_000) -> list[dict[str, Any]]:
    return [{"name": f"s{i}", "uses": "test.blob", "with": {"size": size}} for i in range(n)]


async def test_150_outputs_of_30_kb_complete_on_the_real_server(blob_worker: Client) -> None:
    handle = await blob_worker.start_workflow(
        "PipelineWorkflow",
        PipelineRequest(
            definition=pipeline(blobs(150, 30_000), name="blobs-dev", maxParallel=20), continue_as_new_after=100
        ),
        id=f"blobs-{uuid.uuid4().hex[:8]}",
        task_queue=queues.PIPELINE,
        result_type=PipelineResult,
    )
    result = await asyncio.wait_for(handle.result(), 90)
    assert result.generation > 1
    assert sum(1 for s in result.steps if s.state == "succeeded") == 150
    await assert_no_task_failures(blob_worker, handle.id)


async def test_outputs_too_large_to_carry_fail_the_run_with_the_limit(blob_worker: Client) -> None:
    steps = blobs(80)
    total = " + ".join(f"size(steps.s{i}.outputs.blob)" for i in range(80))
    steps.append(
        {
            "name": "last",
            "uses": "core.echo",
            "needs": [s["name"] for s in steps],
            "with": {"values": {"n": "${{ " + total + " }}"}},
        }
    )
    handle = await blob_worker.start_workflow(
        "PipelineWorkflow",
        PipelineRequest(definition=pipeline(steps, name="carry-dev", maxParallel=20), continue_as_new_after=100),
        id=f"carry-{uuid.uuid4().hex[:8]}",
        task_queue=queues.PIPELINE,
    )
    with pytest.raises(WorkflowFailureError) as info:
        await asyncio.wait_for(handle.result(), 120)
    assert "over the limit of 1536 KiB" in describe_failure(info.value)
    await assert_no_task_failures(blob_worker, handle.id)
