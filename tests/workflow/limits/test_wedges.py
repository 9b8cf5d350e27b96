"""Issue 17: definitions and inputs that pass (or bypass) validation never wedge a run.

Each test is one finding from the bad-input campaign. On the engine before the fix each of these left
the run in endless workflow-task retries (the UI shows Running, `apeiro run --wait` hangs); now each
run closes, succeeded or failed with a message that names the step and the limit, and no history of
any run (continue-as-new generations and children included) holds a WorkflowTaskFailed event.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from definitions import limits, queues
from tests.support import pipeline
from tests.workflow.limits.support import LimitsEngine, continue_as_new_sizes

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("time-skipping")]


def blob_steps(n: int, size: int) -> list[dict[str, Any]]:
    return [{"name": f"s{i}", "uses": "test.blob", "with": {"size": size}} for i in range(n)]


async def test_120_outputs_of_25_kb_continue_as_new_and_complete(limits_engine: LimitsEngine) -> None:
    # 3 MB of outputs in all: carrying every output across continue-as-new broke the 2 MiB payload limit.
    definition = pipeline(blob_steps(120, 25_000), name="many-blobs", maxParallel=20)
    handle = await limits_engine.start(definition, continue_as_new_after=100)
    closed = await limits_engine.closes(handle, 120)
    assert closed.failure is None, closed.failure
    assert closed.result.generation > 1  # it did continue as new
    sizes = await continue_as_new_sizes(limits_engine.client, handle.id)
    # Records without the outputs nothing reads any more: before, the last carry held ~2.5 MB (over
    # Temporal's 2 MiB payload limit, which the real server enforces and the test server does not).
    assert sizes and max(sizes) < 256 * 1024, sizes


async def test_outputs_still_read_are_carried_and_an_oversized_carry_fails_clearly(limits_engine: LimitsEngine) -> None:
    steps = blob_steps(80, 25_000)
    steps.append(
        {
            "name": "last",
            "uses": "core.echo",
            "needs": [s["name"] for s in steps],
            "with": {"values": {"n": "${{ " + " + ".join(f"size(steps.s{i}.outputs.blob)" for i in range(80)) + " }}"}},
        }
    )
    handle = await limits_engine.start(pipeline(steps, name="carry-all", maxParallel=20), continue_as_new_after=100)
    closed = await limits_engine.closes(handle, 120)
    assert closed.failure is not None
    assert "must continue as new" in closed.failure and "1536 KiB" in closed.failure, closed.failure


async def test_outputs_a_later_step_reads_survive_continue_as_new(limits_engine: LimitsEngine) -> None:
    steps = blob_steps(30, 1_000)
    steps.append(
        {
            "name": "last",
            "uses": "core.echo",
            "needs": [s["name"] for s in steps],
            "with": {"values": {"n": "${{ size(steps.s0.outputs.blob) + size(steps.s29.outputs.blob) }}"}},
        }
    )
    handle = await limits_engine.start(
        pipeline(steps, name="carry-some", maxParallel=5, outputs={"n": "steps.last.outputs.n"}),
        continue_as_new_after=100,
    )
    closed = await limits_engine.closes(handle, 120)
    assert closed.failure is None, closed.failure
    assert closed.result.generation > 1
    assert closed.result.outputs == {"n": 2000}


async def test_10000_step_dag_fails_at_start_with_the_limit(limits_engine: LimitsEngine) -> None:
    steps = [{"name": f"s{i}", "uses": "core.echo", **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(10_000)]
    handle = await limits_engine.start(pipeline(steps, name="huge"))
    closed = await limits_engine.closes(handle)
    assert closed.failure is not None
    assert f"over the limit of {limits.MAX_STEPS}" in closed.failure, closed.failure


async def test_the_largest_allowed_dag_runs_within_the_deadlock_detector(limits_engine: LimitsEngine) -> None:
    # MAX_STEPS steps in a chain, scheduled in one workflow task each time (skipped: no activities).
    steps: list[dict[str, Any]] = [{"name": "first", "uses": "core.echo"}]
    steps += [
        {"name": f"s{i}", "uses": "core.echo", "needs": ["first" if i == 1 else f"s{i - 1}"], "when": "inputs.go"}
        for i in range(1, limits.MAX_STEPS)
    ]
    definition = pipeline(steps, name="widest", inputs={"go": {"type": "boolean", "default": False}})
    closed = await limits_engine.closes(await limits_engine.start(definition), 120)
    assert closed.failure is None, closed.failure
    assert sum(1 for s in closed.result.steps if s.state == "skipped") == limits.MAX_STEPS - 1


REC_A = """
apiVersion: apeiro.dev/v1alpha1
kind: Pipeline
metadata: {name: rec-a}
spec:
  steps: [{name: call, uses: core.pipeline, with: {pipeline: rec-b}}]
"""
REC_B = REC_A.replace("rec-a", "rec-x").replace("rec-b", "rec-a").replace("rec-x", "rec-b")
REC_DYN = """
apiVersion: apeiro.dev/v1alpha1
kind: Pipeline
metadata: {name: rec-dyn}
spec:
  inputs: {next: {type: string, default: rec-dyn}}
  steps: [{name: call, uses: core.pipeline, with: {pipeline: "${{ inputs.next }}"}}]
"""


@pytest.mark.parametrize("start", ["rec-a", "rec-dyn"])
async def test_mutual_recursion_through_sub_pipelines_stops_at_the_depth_limit(
    limits_engine: LimitsEngine, start: str
) -> None:
    (limits_engine.library / "rec-a.yaml").write_text(REC_A)
    (limits_engine.library / "rec-b.yaml").write_text(REC_B)
    (limits_engine.library / "rec-dyn.yaml").write_text(REC_DYN)
    handle = await limits_engine.start(raw={"pipeline": start})
    closed = await limits_engine.closes(handle, 120)
    assert closed.failure is not None
    assert f"over the limit of {limits.MAX_PIPELINE_DEPTH}" in closed.failure, closed.failure
    # Every ancestor closed too (before, each was left running).
    desc = await limits_engine.client.get_workflow_handle(f"{handle.id}/call/call/call").describe()
    assert desc.status is not None and desc.status.name == "FAILED"


async def test_overflowing_wait_duration_from_an_input_fails_the_step(limits_engine: LimitsEngine) -> None:
    definition = pipeline(
        [{"name": "pause", "uses": "core.wait", "with": {"duration": "${{ inputs.d }}"}}],
        name="long-wait",
        inputs={"d": {"type": "string"}},
    )
    closed = await limits_engine.closes(await limits_engine.start(definition, inputs={"d": "99999999999d"}))
    assert closed.failure is not None
    assert "pause" in closed.failure and "limit of 3660 days" in closed.failure, closed.failure


@pytest.mark.parametrize("timeout", [1e308, float("inf"), "P99999999999D"])
async def test_overflowing_timeout_in_json_fails_the_run_with_the_field(
    limits_engine: LimitsEngine, timeout: Any
) -> None:
    definition = pipeline([{"name": "a", "uses": "core.echo", "timeout": timeout}], name="json-timeout")
    # As typed into the Temporal UI: the raw JSON dict, nothing validated it before start.
    closed = await limits_engine.closes(await limits_engine.start(raw={"definition": definition}))
    assert closed.failure is not None
    assert "timeout" in closed.failure, closed.failure


async def test_integer_beyond_int64_in_inputs_fails_the_run_with_the_field(limits_engine: LimitsEngine) -> None:
    definition = pipeline(
        [{"name": "a", "uses": "core.echo", "with": {"values": {"n": "${{ inputs.n + 1 }}"}}}],
        name="big-int",
        inputs={"n": {"type": "integer", "default": 1}},
    )
    closed = await limits_engine.closes(
        await limits_engine.start(raw={"definition": definition, "inputs": {"n": 2**70}})
    )
    assert closed.failure is not None
    assert "inputs.n" in closed.failure and "64-bit" in closed.failure, closed.failure


async def test_integer_beyond_int64_in_a_step_output_fails_the_reading_step(limits_engine: LimitsEngine) -> None:
    definition = pipeline(
        [
            {"name": "big", "uses": "test.blob", "with": {"big_int": True}},
            {
                "name": "read",
                "uses": "core.echo",
                "needs": ["big"],
                "with": {"values": {"n": "${{ steps.big.outputs.n }}"}},
            },
        ],
        name="big-output",
    )
    closed = await limits_engine.closes(await limits_engine.start(definition))
    assert closed.failure is not None
    assert "'read'" in closed.failure and "64 bits" in closed.failure, closed.failure


async def test_cel_with_unbounded_cost_fails_the_step_with_the_budget(limits_engine: LimitsEngine) -> None:
    nested = "1"
    for var in "abcdef":  # six nested maps over 10 items: 10^6 elements
        nested = f"[0,1,2,3,4,5,6,7,8,9].map({var}, {nested})"
    definition = pipeline([{"name": "costly", "uses": "core.echo", "when": f"size({nested}) > 0"}], name="costly")
    closed = await limits_engine.closes(await limits_engine.start(definition))
    assert closed.failure is not None
    assert "'costly'" in closed.failure and f"limit of {limits.MAX_CEL_COST}" in closed.failure, closed.failure


async def test_oversized_step_output_fails_the_step_with_the_limit(limits_engine: LimitsEngine) -> None:
    definition = pipeline([{"name": "huge", "uses": "test.blob", "with": {"size": 300_000}}], name="huge-output")
    closed = await limits_engine.closes(await limits_engine.start(definition))
    assert closed.failure is not None
    assert "'huge'" in closed.failure and "over the limit of 256 KiB" in closed.failure, closed.failure


async def test_an_unanticipated_user_data_error_fails_the_workflow_not_the_task(limits_engine: LimitsEngine) -> None:
    # The structural half of the rule: the worker's workflow_failure_exception_types.
    handle = await limits_engine.client.start_workflow(
        "RaisesKeyErrorWorkflow", {"other": 1}, id=f"keyerror-{uuid.uuid4().hex[:8]}", task_queue=queues.PIPELINE
    )
    closed = await limits_engine.closes(handle, 30)
    assert closed.failure is not None and "missing-field" in closed.failure, closed.failure
