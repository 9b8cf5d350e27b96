"""Operator repair of a running pipeline: retry, skip (with outputs), pause/resume; validators refuse
what may not happen (nothing changes); every repair is audited; the UI's current details show progress."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Replayer

from definitions.runs import PipelineResult, PipelineStatus, RepairRequest, StepState
from tests.support import pausing_flaky, pipeline
from tests.workflow.conftest import Engine
from workers.config import data_converter
from workers.worker import workflow_runner
from workflows.fanout import FanOutWorkflow
from workflows.pipeline import PipelineWorkflow

pytestmark = pytest.mark.workflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


async def status(handle: WorkflowHandle[Any, Any]) -> PipelineStatus:
    return await handle.query("status", result_type=PipelineStatus)


async def until(handle: WorkflowHandle[Any, Any], check: Any, timeout: float = 20) -> PipelineStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        st = await status(handle)
        if check(st):
            return st
        assert asyncio.get_running_loop().time() < deadline, f"condition not reached: {st}"
        await asyncio.sleep(0.1)


def step(st: PipelineStatus, name: str) -> Any:
    return next(s for s in st.steps if s.name == name)


async def refused(handle: WorkflowHandle[Any, Any], update: str, req: RepairRequest, match: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await handle.execute_update(update, req)
    assert match in str(exc.value.cause), exc.value.cause


FLAKY = pausing_flaky("flaky")


async def test_failed_step_with_pause_waits_and_retry_runs_it_and_its_dependants(engine: Engine) -> None:
    h = await engine.start(
        pipeline([FLAKY, {"name": "after", "uses": "core.echo", "needs": ["flaky"], "with": {"values": {"x": 1}}}])
    )
    st = await until(h, lambda s: step(s, "flaky").state is StepState.FAILED)
    await asyncio.sleep(0.3)
    st = await status(h)
    assert st.state.value == "running" and step(st, "after").state is StepState.PENDING  # waits, not cancelled

    await refused(h, "retry_step", RepairRequest(step="flaky", by="op"), "reason is required")
    await refused(h, "retry_step", RepairRequest(step="after", by="op", reason="x"), "not failed")
    await refused(h, "retry_step", RepairRequest(step="nope", by="op", reason="x"), "no step named")
    assert step(await status(h), "flaky").repairs == []  # refusals changed nothing

    await h.execute_update("retry_step", RepairRequest(step="flaky", by="op", reason="BMC was rebooted"))
    result = PipelineResult.model_validate(await h.result())
    assert result.state.value == "succeeded"
    flaky = next(s for s in result.steps if s.name == "flaky")
    assert flaky.state is StepState.SUCCEEDED and engine.probe.calls["flaky"] == 2
    assert [(r.action, r.by, r.reason) for r in flaky.repairs] == [("retry", "op", "BMC was rebooted")]
    assert next(s for s in result.steps if s.name == "after").state is StepState.SUCCEEDED

    # The repaired run replays deterministically (updates, the patch marker, summaries and details).
    history = await h.fetch_history()
    replayer = Replayer(
        debug_mode=True,
        workflows=[PipelineWorkflow, FanOutWorkflow],
        data_converter=data_converter(),
        workflow_runner=workflow_runner(),
    )
    replay = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None, replay.replay_failure
    if os.environ.get("APEIRO_RECORD_HISTORIES"):
        # tests/histories/<type>/<case>.json with the workflow id (tests/workflow/test_replay.py reads it)
        saved = {"workflowId": "replay-operator-repair", **json.loads(history.to_json())}
        (HISTORIES / "PipelineWorkflow" / "operator-repair.json").write_text(json.dumps(saved, indent=1))

    # A finished run takes no updates at all (Temporal refuses them before any validator runs).
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await h.execute_update("pause", RepairRequest(by="op", reason="late"))


async def test_skip_gives_the_operators_outputs_to_dependants(engine: Engine) -> None:
    h = await engine.start(
        pipeline(
            [
                {**FLAKY, "with": {"key": "skipme", "fail_calls": 5}},
                {
                    "name": "use",
                    "uses": "core.echo",
                    "needs": ["flaky"],
                    "with": {"values": {"v": "${{ steps.flaky.outputs.key }}"}},
                },
            ],
            outputs={"v": "steps.use.outputs.v"},
        )
    )
    await until(h, lambda s: step(s, "flaky").state is StepState.FAILED)
    await refused(h, "skip_step", RepairRequest(step="flaky", by="op"), "reason is required")
    await h.execute_update(
        "skip_step",
        RepairRequest(step="flaky", by="op", reason="done by hand", outputs={"key": "by-hand", "attempt": 0}),
    )
    result = PipelineResult.model_validate(await h.result())
    assert result.outputs == {"v": "by-hand"}
    flaky = next(s for s in result.steps if s.name == "flaky")
    assert flaky.state is StepState.SKIPPED and flaky.repairs[0].action == "skip"


async def test_pause_holds_new_steps_and_resume_goes_on(engine: Engine) -> None:
    h = await engine.start(
        pipeline(
            [
                {"name": "first", "uses": "test.probe", "with": {"key": "first", "sleep": 1.0}},
                {"name": "second", "uses": "core.echo", "needs": ["first"], "with": {"values": {"x": 1}}},
            ]
        )
    )
    await until(h, lambda s: step(s, "first").state is StepState.RUNNING)
    st = PipelineStatus.model_validate(await h.execute_update("pause", RepairRequest(by="op", reason="window closed")))
    assert st.paused and st.repairs[0].by == "op"
    await refused(h, "pause", RepairRequest(by="op", reason="again"), "already paused")
    await until(h, lambda s: step(s, "first").state is StepState.SUCCEEDED)
    await asyncio.sleep(0.5)
    st = await status(h)
    assert step(st, "second").state is StepState.PENDING and st.state.value == "running"

    details = await h.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    text = details.current_details
    assert "paused by an operator" in text and "| first |" in text and "succeeded" in text

    await h.execute_update("resume", RepairRequest(by="op2"))
    result = PipelineResult.model_validate(await h.result())
    assert result.state.value == "succeeded"
