"""PipelineWorkflow on the time-skipping test server: DAG semantics, failures, builtins, bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from definitions.runs import ApprovalDecision, PipelineStatus, StepState
from tests.support import pipeline
from tests.workflow.conftest import Engine

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("time-skipping")]


async def failure_of(handle: Any) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def status(handle: Any) -> PipelineStatus:
    return await handle.query("status", result_type=PipelineStatus)


def states(result_or_status: Any) -> dict[str, str]:
    steps = result_or_status["steps"] if isinstance(result_or_status, dict) else result_or_status.steps
    return {s["name"]: s["state"] for s in steps} if isinstance(result_or_status, dict) else {
        s.name: s.state.value for s in steps}


async def test_outputs_flow_through_the_dag(engine: Engine) -> None:
    h = await engine.start(pipeline(
        [
            {"name": "a", "uses": "core.echo", "with": {"values": {"x": "${{ inputs.n * 2 }}"}}},
            {"name": "b", "uses": "core.echo", "needs": ["a"], "forEach": "[1, 2, 3]",
             "with": {"values": {"i": "${{ item + steps.a.outputs.x }}", "at": "${{ index }}"}}},
            {"name": "c", "uses": "core.echo", "needs": ["a"], "outputs": {"twice": "result.y * 2"},
             "with": {"values": {"y": "${{ steps.a.outputs.x }}"}}},
        ],
        inputs={"n": {"type": "integer", "default": 3}},
        outputs={"items": "steps.b.outputs.map(o, o.i)", "twice": "steps.c.outputs.twice"},
    ))
    result = await h.result()
    assert result["outputs"] == {"items": [7, 8, 9], "twice": 12}
    assert states(result) == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}


async def test_failure_cancels_dependants_and_names_the_step(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "bad", "uses": "test.probe", "with": {"key": "bad", "fail_times": 5}},
        {"name": "after", "uses": "core.echo", "needs": ["bad"]},
        {"name": "later", "uses": "core.echo", "needs": ["after"]},
        {"name": "independent", "uses": "test.probe", "with": {"key": "indep", "sleep": 0.5}},
    ]))
    err = await failure_of(h)
    assert err.type == "PipelineFailed" and err.non_retryable
    assert "step 'bad' (test.probe) failed: ProbeFailure: probe failure (attempt 1)" in err.message
    assert "not run because of it: after, later" in err.message
    st = await status(h)
    assert states(st) == {"bad": "failed", "after": "cancelled", "later": "cancelled", "independent": "succeeded"}
    assert engine.probe.calls["indep"] == 1


async def test_retry_policy_from_the_step(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "flaky", "uses": "test.probe", "with": {"key": "flaky", "fail_times": 2},
         "retry": {"maxAttempts": 3, "initialInterval": "1s"}},
    ], outputs={"attempt": "steps.flaky.outputs.attempt"}))
    assert (await h.result())["outputs"] == {"attempt": 3}


async def test_non_retryable_error_is_not_retried(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "fatal", "uses": "test.probe", "with": {"key": "fatal", "fail_times": 9, "non_retryable": True},
         "retry": {"maxAttempts": 5}},
    ]))
    await failure_of(h)
    assert engine.probe.calls["fatal"] == 1


async def test_continue_on_error_lets_dependants_run(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "optional", "uses": "test.probe", "with": {"key": "o", "fail_times": 1}, "continueOnError": True},
        {"name": "next", "uses": "core.echo", "needs": ["optional"],
         "with": {"values": {"seen": "${{ steps.optional.status }}"}}},
    ], outputs={"seen": "steps.next.outputs.seen"}))
    assert (await h.result())["outputs"] == {"seen": "failed"}


async def test_when_false_skips_and_dependants_still_run(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "maybe", "uses": "core.echo", "when": "inputs.go"},
        {"name": "after", "uses": "core.echo", "needs": ["maybe"]},
    ], inputs={"go": {"type": "boolean", "default": False}}))
    result = await h.result()
    assert states(result) == {"maybe": "skipped", "after": "succeeded"}


async def test_foreach_item_failures_are_counted(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "each", "uses": "test.probe", "forEach": "['a', 'b', 'c']", "maxParallel": 2,
         "with": {"key": "${{ item }}", "fail_times": "${{ item == 'b' ? 9 : 0 }}", "non_retryable": True}},
    ]))
    err = await failure_of(h)
    assert "1 of 3 items failed: [1] ProbeFailure: probe failure (attempt 1)" in err.message
    st = await status(h)
    each = st.steps[0]
    assert (each.items_total, each.items_done, each.items_failed) == (3, 3, 1)


async def test_large_foreach_runs_as_child_workflows(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "fan", "uses": "core.echo", "forEach": "inputs.hosts", "maxParallel": 40,
         "with": {"values": {"host": "${{ item }}", "i": "${{ index }}"}}},
    ], inputs={"hosts": {"type": "array", "default": [f"h{i}" for i in range(130)]}},
        outputs={"n": "size(steps.fan.outputs)", "last": "steps.fan.outputs[129].host"}))
    result = await h.result()
    assert result["outputs"] == {"n": 130, "last": "h129"}
    st = await status(h)
    assert sorted(st.steps[0].child_workflow_ids) == [f"{h.id}/fan/chunk-{i}" for i in range(2)]


async def test_wait_is_a_durable_timer(engine: Engine) -> None:
    h = await engine.start(pipeline([{"name": "pause", "uses": "core.wait", "with": {"duration": "3h"}}]))
    result = await h.result()
    assert result["steps"][0]["state"] == "succeeded"


async def test_subpipeline_by_name(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "sub", "uses": "core.pipeline", "with": {"pipeline": "sub-double", "inputs": {"n": 21}}},
    ], outputs={"v": "steps.sub.outputs.doubled"}))
    assert (await h.result())["outputs"] == {"v": 42}


async def test_approval_update_validator_and_quorum(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "gate", "uses": "core.approval", "timeout": "2h",
         "with": {"approvers": ["alice", "bob", "carol"], "quorum": 2}},
        {"name": "after", "uses": "core.echo", "needs": ["gate"]},
    ]), requested_by="carol")
    for _ in range(100):
        st = await status(h)
        if st.steps[0].state is StepState.WAITING and "waiting for approval" in st.steps[0].message:
            break
        await asyncio.sleep(0.05)
    assert "2 needed, from alice, bob, carol" in st.steps[0].message

    async def rejected(decision: ApprovalDecision, reason: str) -> None:
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await h.execute_update("approve", decision)
        assert reason in str(info.value.cause)

    await rejected(ApprovalDecision(step="gate", approver="mallory"), "'mallory' may not approve 'gate'")
    await rejected(ApprovalDecision(step="gate", approver="carol"), "four-eyes")
    await rejected(ApprovalDecision(step="after", approver="alice"), "not waiting for approval")
    await rejected(ApprovalDecision(step="nope", approver="alice"), "no step named 'nope'")
    first = await h.execute_update("approve", ApprovalDecision(step="gate", approver="alice"))
    assert first["decided"] is False and first["approvals"] == 1
    await rejected(ApprovalDecision(step="gate", approver="alice"), "already voted")
    second = await h.execute_update("approve", ApprovalDecision(step="gate", approver="bob", comment="lgtm"))
    assert second["approved"] is True
    result = await h.result()
    assert states(result) == {"gate": "succeeded", "after": "succeeded"}


async def test_approval_rejection_fails_the_step(engine: Engine) -> None:
    h = await engine.start(pipeline([{"name": "gate", "uses": "core.approval"}]))
    for _ in range(100):
        if (await status(h)).steps[0].state is StepState.WAITING:
            break
        await asyncio.sleep(0.05)
    await h.execute_update("approve", ApprovalDecision(step="gate", approver="bob", approve=False, comment="not today"))
    err = await failure_of(h)
    assert "rejected by bob: not today" in err.message


async def test_approval_times_out(engine: Engine) -> None:
    h = await engine.start(pipeline([{"name": "gate", "uses": "core.approval", "timeout": "30m"}]))
    err = await failure_of(h)
    assert "no decision within 0:30:00 (0 of 1 approvals)" in err.message


async def test_step_timeout(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "slow", "uses": "test.probe", "timeout": "2s", "with": {"key": "slow", "sleep": 30}},
    ]))
    err = await failure_of(h)
    assert "step 'slow' (test.probe) failed: timed out" in err.message


async def test_runtime_expression_error_fails_the_step_with_its_message(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "a", "uses": "core.echo", "with": {"values": {"x": 1}}},
        {"name": "b", "uses": "core.echo", "needs": ["a"], "with": {"values": {"y": "${{ steps.a.outputs.nope }}"}}},
    ]))
    err = await failure_of(h)
    assert "step 'b' (core.echo) failed: cannot evaluate 'steps.a.outputs.nope'" in err.message


async def test_rendered_arguments_are_type_checked(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "w", "uses": "core.wait", "with": {"duration": "${{ inputs.d }}"}},
    ], inputs={"d": {"type": "string", "default": "soon"}}))
    err = await failure_of(h)
    assert "invalid arguments for core.wait: spec.steps[0].with.duration: 'soon' is not a duration" in err.message


# --- bad input from the Temporal UI / CLI fails the workflow, never a workflow task -------------

@pytest.mark.parametrize(("raw", "expected"), [
    ({"pipelin": "edge-site"}, "invalid PipelineWorkflow input: pipelin: unknown field"),
    ("edge-site", "invalid PipelineWorkflow input"),
    ({}, "give exactly one of 'pipeline'"),
    ({"pipeline": "edge-site", "inputs": []}, "inputs: Input should be a valid dictionary"),
])
async def test_bad_json_input_fails_fast(engine: Engine, raw: Any, expected: str) -> None:
    err = await failure_of(await engine.start(raw=raw))
    assert err.type == "InvalidInput" and expected in err.message


async def test_invalid_inline_definition_fails_with_paths(engine: Engine) -> None:
    h = await engine.start(raw={"definition": pipeline([{"name": "a", "uses": "core.echo", "needs": ["zz"]}])})
    err = await failure_of(h)
    assert err.type == "InvalidDefinition"
    assert "spec.steps[0].needs[0]: no step named 'zz'" in err.message


async def test_inputs_of_the_wrong_type_fail_with_paths(engine: Engine) -> None:
    h = await engine.start(raw={"pipeline": "edge-site", "inputs": {"serverSite": "three", "extra": 1}})
    err = await failure_of(h)
    assert "inputs.serverSite: must be an object, got str 'three'" in err.message
    assert "inputs.gardenLinuxImage: required input is missing (object)" in err.message
    assert "inputs.extra: the pipeline declares no input 'extra'" in err.message


async def test_unknown_pipeline_name(engine: Engine) -> None:
    err = await failure_of(await engine.start(raw={"pipeline": "ghost"}))
    assert err.type == "UnknownPipeline" and "no pipeline named 'ghost'" in err.message


async def test_continue_as_new_keeps_every_record(engine: Engine) -> None:
    steps = [{"name": f"s{i}", "uses": "core.echo", "with": {"values": {"i": i}},
              **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(30)]
    h = await engine.start(pipeline(steps, outputs={"last": "steps.s29.outputs.i"}), continue_as_new_after=100)
    result = await h.result()
    assert result["outputs"] == {"last": 29}
    assert result["generation"] > 1
    assert all(s["state"] == "succeeded" for s in result["steps"])
