"""`promotion.run` inside a pipeline: the step starts the promotion under its deterministic id, an approval
reaches it through the engine-compatible `approve` update, and a failed promotion fails the step."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from definitions import queues
from definitions.runs import PipelineRequest, PipelineStatus, StepState
from tests.workflow.promotion.conftest import Harness, definition
from workers.cli.promote import approve_waiting
from workers.worker import build_workers

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("promotion-ts")]


def pipeline(promotion: dict[str, Any]) -> dict[str, Any]:
    spec = promotion["spec"]
    spec["defaults"].pop("prometheus")
    return {"apiVersion": "apeiro.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": "ship"},
            "spec": {"inputs": {"version": {"type": "string"}, "prom": {"type": "string"}},
                     "steps": [{"name": "promote", "uses": "promotion.run",
                                "with": {"version": "${{ inputs.version }}", "prometheus": "${{ inputs.prom }}",
                                         "promotion": promotion}}],
                     "outputs": {"state": "steps.promote.outputs.state"}}}


async def start_ship(harness: Harness, data: dict[str, Any], version: str) -> WorkflowHandle[Any, Any]:
    """Starts the `ship` pipeline for ``version``; the pipeline and the promotion it starts are cleaned up."""
    harness.track(data, f"promotion-{data['metadata']['name']}-{version}")
    handle = await harness.client.start_workflow(
        "PipelineWorkflow", PipelineRequest(definition=pipeline(data), inputs={"version": version, "prom": "http://p"}),
        id=f"wf-{uuid.uuid4().hex[:8]}", task_queue=queues.PIPELINE)
    harness.started.append(handle.id)
    return handle


async def test_pipeline_step_promotes_and_is_approved_through_the_promotion(harness: Harness) -> None:
    data = definition(harness.tmp)
    name = data["metadata"]["name"]
    async with build_workers(harness.client, [queues.PIPELINE])[0]:
        handle = await start_ship(harness, data, "3.0.0")
        promotion = harness.client.get_workflow_handle(f"promotion-{name}-3.0.0")
        await harness.wait_for(promotion, lambda s: bool(s.waiting_approvals))
        assert await approve_waiting(harness.client, name, "3.0.0", "carol") == ["production/approval"]
        result = await handle.result()
        assert result["outputs"]["state"] == "Succeeded"
    assert harness.world.stages["default/prod"] == "3.0.0"


async def test_failed_promotion_fails_the_step(harness: Harness) -> None:
    harness.world.metric = lambda n: 0.9
    data = definition(harness.tmp, approval=False)
    async with build_workers(harness.client, [queues.PIPELINE])[0]:
        handle = await start_ship(harness, data, "3.1.0")
        try:
            await handle.result()
        except Exception:
            pass
        status = await handle.query("status", result_type=PipelineStatus)
    step = status.steps[0]
    assert step.state is StepState.FAILED
    assert "ended Failed" in (step.error or "")
