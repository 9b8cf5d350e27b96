"""A release that changes the registry or a pipeline file never changes a pipeline run in flight.

Each test starts a run that waits on an approval, then plays "the new build": it re-routes a step
type, removes one, or rewrites a sub-pipeline file; after the approval the run goes on with what it
pinned at start, and a query after it completed (a full replay on "the new build") issues the same
commands, never a non-determinism error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from definitions.catalog import REGISTRY
from definitions.runs import ApprovalDecision, PipelineStatus, RunState, StepState
from tests.support import pipeline, register_probe_step
from tests.workflow.conftest import Engine

pytestmark = pytest.mark.workflow


@pytest.fixture
def pinned_type() -> Iterator[str]:
    """`test.pinned`: the probe activity under another name, restored after the test."""
    register_probe_step()
    REGISTRY.register(replace(REGISTRY.get("test.probe"), name="test.pinned"), replace=True)
    yield "test.pinned"
    REGISTRY.unregister("test.pinned")


def gated(*steps: dict[str, Any]) -> dict[str, Any]:
    return pipeline(
        [
            {"name": "gate", "uses": "core.approval", "with": {"approvers": ["ops"]}},
            *({"needs": ["gate"], **s} for s in steps),
        ],
        name="pinned",
        outputs={"out": "steps.after.outputs"},
    )


async def waiting_at_gate(handle: WorkflowHandle[Any, Any]) -> PipelineStatus:
    async with asyncio.timeout(20):
        while True:
            st = await handle.query("status", result_type=PipelineStatus)
            if st.steps and st.steps[0].state is StepState.WAITING and st.steps[0].message:
                return st
            await asyncio.sleep(0.05)


async def approve(handle: WorkflowHandle[Any, Any]) -> None:
    await handle.execute_update("approve", ApprovalDecision(step="gate", approver="ops"))


async def test_rerouted_step_type_runs_as_pinned(engine: Engine, pinned_type: str) -> None:
    handle = await engine.start(gated({"name": "after", "uses": pinned_type, "with": {"key": "pinned-run"}}))
    status = await waiting_at_gate(handle)
    assert status.revision and len(status.revision) == 16
    # The new build routes the type to an activity on a queue nobody serves.
    REGISTRY.register(replace(REGISTRY.get(pinned_type), target="test.gone", task_queue="nowhere"), replace=True)
    await approve(handle)
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["state"] == RunState.SUCCEEDED.value
    assert engine.probe.calls == {"pinned-run": 1}
    assert (await handle.query("status", result_type=PipelineStatus)).revision == status.revision


async def test_step_type_gone_from_the_build_runs_as_pinned_and_replays(engine: Engine, pinned_type: str) -> None:
    """The new build lost the type; an old worker still serves its activity: the step runs as pinned,
    and a replay on the build without the type (the query after completion) issues the same commands."""
    handle = await engine.start(gated({"name": "after", "uses": pinned_type, "with": {"key": "gone"}}))
    await waiting_at_gate(handle)
    REGISTRY.unregister(pinned_type)
    await approve(handle)
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["state"] == RunState.SUCCEEDED.value
    assert engine.probe.calls == {"gone": 1}
    st = await handle.query("status", result_type=PipelineStatus)  # a replay without the type: no non-determinism
    assert [s.state for s in st.steps] == [StepState.SUCCEEDED, StepState.SUCCEEDED]


def test_a_type_missing_from_the_build_is_named() -> None:
    from definitions.pinning import PinnedDefinition, missing_type_message, pin, pinned_registry
    from definitions.steptypes import StepTypeRegistry

    pinned = pin({"spec": {"steps": [{"name": "a", "uses": "core.echo"}]}}, REGISTRY)
    assert isinstance(pinned, PinnedDefinition) and set(pinned.step_types) == {"core.echo"}
    registry = pinned_registry(pinned, StepTypeRegistry())
    message = missing_type_message(registry.get("core.echo"))
    assert message and "step type 'core.echo' (activity 'core.echo' on queue 'pipeline'" in message
    assert missing_type_message(pinned_registry(pinned, REGISTRY).get("core.echo")) is None


async def test_sub_pipeline_file_changed_in_flight_runs_the_pinned_definition(engine: Engine, tmp_path: Path) -> None:
    handle = await engine.start(
        gated({"name": "after", "uses": "core.pipeline", "with": {"pipeline": "sub-double", "inputs": {"n": 21}}})
    )
    await waiting_at_gate(handle)
    sub = tmp_path / "sub.yaml"
    sub.write_text(sub.read_text().replace("inputs.n * 2", "inputs.n * 3"))
    await approve(handle)
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["outputs"]["out"] == {"doubled": 42}
    # A run started now gets the new file (and another revision).
    fresh = await engine.start(
        gated({"name": "after", "uses": "core.pipeline", "with": {"pipeline": "sub-double", "inputs": {"n": 21}}})
    )
    fresh_status = await waiting_at_gate(fresh)
    await approve(fresh)
    assert (await asyncio.wait_for(fresh.result(), 30))["outputs"]["out"] == {"doubled": 63}
    assert fresh_status.revision != (await handle.query("status", result_type=PipelineStatus)).revision
