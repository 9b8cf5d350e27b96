"""Several components promoted as one release (a release vector): deployed, gated and rolled back together;
a release that pins another version of a component a release in flight pins is refused."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from definitions import queues
from definitions.promotion_runs import RingState, RunState
from definitions.runs import ApprovalDecision
from tests.workflow.promotion.conftest import Harness, definition
from workers.config import data_converter
from workers.worker import build_workers, workflow_runner
from workflows.promotion import WORKFLOWS

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("promotion-ts")]

VECTOR = "example.apeiro.dev/edge-release"
HISTORIES = Path(__file__).resolve().parents[2] / "histories"
A, B = "example.apeiro.dev/edge-app", "example.apeiro.dev/edge-api"


async def replays(client: Client, workflow_id: str, case: str) -> None:
    """The run's history replays on this code (the release paths and their patch markers are deterministic);
    with APEIRO_SAVE_HISTORIES=1 it is also saved under tests/histories for later changes to replay."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    replayer = Replayer(
        debug_mode=True, workflows=WORKFLOWS, data_converter=data_converter(), workflow_runner=workflow_runner()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{workflow_id}: {result.replay_failure}"
    if os.environ.get("APEIRO_SAVE_HISTORIES") == "1":
        kind = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
        path = HISTORIES / kind / f"{case}.json"
        path.write_text(json.dumps({"workflowId": workflow_id, **json.loads(history.to_json())}, indent=1))


def release(
    tmp: Path, pins: dict[str, str], *, name: str | None = None, supersede: bool = True, approval: bool = False
) -> dict[str, Any]:
    data = definition(tmp, approval=approval)
    if name:
        data["metadata"]["name"] = name
    del data["spec"]["artifact"]
    data["spec"]["release"] = {
        "vector": VECTOR,
        "repository": "http://registry",
        "components": [{"component": c, "version": v} for c, v in pins.items()],
    }
    data["spec"]["versionPolicy"] = {"supersede": supersede}
    return data


async def test_two_component_release_goes_ring_by_ring_with_gates(harness: Harness) -> None:
    data = release(harness.tmp, {A: "1.4.0", B: "2.1.0"}, approval=True)
    handle = await harness.start(data, "2026.12.1")
    await harness.wait_for(handle, lambda s: bool(s.waiting_approvals))
    await handle.execute_update("approve", ApprovalDecision(step="production/approval", approver="bob"))
    out = await harness.outcome(handle)
    assert out.status.state is RunState.SUCCEEDED
    assert [r.state for r in out.status.rings] == [RingState.VERIFIED] * 3
    # every Stage runs the release vector, which pins both components
    assert set(harness.world.vectors.values()) == {f"{VECTOR}:2026.12.1"}
    assert len(harness.world.vectors) == 4
    for attempt in out.audit:
        assert attempt.components == {A: "1.4.0", B: "2.1.0"}
    canary = out.audit[1]
    assert next(g for g in canary.gates if g.name == "error-rate").outcome == "Passed"  # gated together


async def test_breach_rolls_back_both_components_to_the_last_verified_release(harness: Harness) -> None:
    first = release(harness.tmp, {A: "1.4.0", B: "2.1.0"})
    assert (await harness.outcome(await harness.start(first, "2026.12.1"))).status.state is RunState.SUCCEEDED
    harness.world.metric = lambda n: 0.5  # the new release breaches in canary
    second = release(harness.tmp, {A: "1.5.0", B: "2.2.0"}, name=first["metadata"]["name"])
    out = await harness.outcome(await harness.start(second, "2026.12.2"))
    assert out.status.state is RunState.FAILED
    canary = next(r for r in out.status.rings if r.ring == "canary")
    assert canary.state is RingState.ROLLED_BACK
    assert canary.components == {A: "1.5.0", B: "2.2.0"}
    assert canary.rollback_to == "2026.12.1"
    assert canary.rollback_components == {A: "1.4.0", B: "2.1.0"}  # every component back to its previous version
    assert f"rolled back to 2026.12.1 ({B} 2.1.0, {A} 1.4.0)" in canary.reason
    vectors = harness.world.vectors
    assert vectors["default/canary-1"] == vectors["default/canary-2"] == f"{VECTOR}:2026.12.1"
    assert vectors["default/prod"] == f"{VECTOR}:2026.12.1"  # later rings untouched
    assert next(r for r in out.status.rings if r.ring == "production").state is RingState.STOPPED
    await replays(harness.client, out.status.workflow_id, "release-rolled-back")


async def test_a_release_after_a_single_component_rolls_back_to_that_component(harness: Harness) -> None:
    single = definition(harness.tmp, approval=False)
    assert (await harness.outcome(await harness.start(single, "1.0.0"))).status.state is RunState.SUCCEEDED
    harness.world.metric = lambda n: 0.5
    first = release(harness.tmp, {A: "1.4.0", B: "2.1.0"}, name=single["metadata"]["name"])
    out = await harness.outcome(await harness.start(first, "2026.12.1"))
    assert out.status.state is RunState.FAILED
    canary = next(r for r in out.status.rings if r.ring == "canary")
    assert canary.state is RingState.ROLLED_BACK and canary.rollback_component == A
    vectors = harness.world.vectors
    assert vectors["default/canary-1"] == vectors["default/canary-2"] == f"{A}:1.0.0"
    assert vectors["default/dev"] == f"{VECTOR}:2026.12.1"  # dev verified the release before canary failed


async def test_conflicting_release_in_flight_is_refused_with_the_reason(harness: Harness) -> None:
    first = release(harness.tmp, {A: "1.4.0", B: "2.1.0"}, supersede=False, approval=True)
    holder = await harness.start(first, "2026.12.1")
    await harness.wait_for(holder, lambda s: bool(s.waiting_approvals))  # in flight, holding production
    clash = release(harness.tmp, {A: "1.4.0", B: "2.2.0"}, name=first["metadata"]["name"], supersede=False)
    # polled, not awaited: awaiting a result lets the time-skipping server jump past the holder's approval timeout
    refused = await harness.wait_for(await harness.start(clash, "2026.12.2"), lambda s: s.state is RunState.REFUSED)
    msg = refused.message
    assert f"component {B} 2.2.0 conflicts with {B} 2.1.0" in msg
    assert f"promotion-{first['metadata']['name']}-2026.12.1" in msg  # the run holding it
    assert harness.world.deployments.count(("default/dev", "2026.12.2")) == 0  # nothing deployed
    # a release that agrees on the shared components may run beside it
    agree = release(harness.tmp, {A: "1.4.0", B: "2.1.0"}, name=first["metadata"]["name"], supersede=False)
    agreeing = await harness.start(agree, "2026.12.3")
    await harness.wait_for(agreeing, lambda s: s.state is RunState.RUNNING)
    await holder.execute_update("approve", ApprovalDecision(step="production/approval", approver="bob"))
    assert (await harness.outcome(holder)).status.state is RunState.SUCCEEDED
    assert (await harness.outcome(agreeing)).status.state is RunState.SUCCEEDED
    # once both finished, the refused pins are free again
    again = await harness.outcome(await harness.start(clash, "2026.12.4"))
    assert again.status.state is RunState.SUCCEEDED
    await replays(harness.client, refused.workflow_id, "release-refused")
    await replays(harness.client, f"promotion-coordinator-{first['metadata']['name']}", "release-coordinator")


async def test_a_release_across_landscapes_in_waves_canary_first(harness: Harness) -> None:
    data = release(harness.tmp, {A: "1.4.0", B: "2.1.0"})
    del data["spec"]["rings"]
    data["spec"]["landscapeWaves"] = {
        "landscapes": ["canary-eu", "eu-1", "eu-2", "us-1"],
        "stage": "edge",
        "namespace": "apps",
        "waves": [1, "50%", "100%"],
        "maxInFlight": 2,
        "entryGates": [{"type": "approval", "approvers": ["bob"]}],
        "verifyGates": [{"type": "soak", "duration": "10m"}],
    }
    handle = await harness.start(data, "2026.12.1")
    st = await harness.wait_for(handle, lambda s: bool(s.waiting_approvals))
    assert st.waiting_approvals == ["wave-1/approval"]
    assert [k for k, _ in harness.world.deployments] == ["canary-eu:apps/edge"]  # the canary landscape alone
    await handle.execute_update("approve", ApprovalDecision(step="wave-1/approval", approver="bob"))
    await harness.wait_for(handle, lambda s: s.waiting_approvals == ["wave-2/approval"])
    await handle.execute_update("approve", ApprovalDecision(step="wave-2/approval", approver="bob"))
    out = await harness.outcome(handle)
    assert out.status.state is RunState.SUCCEEDED
    assert [(a.ring, [(t.landscape, t.stage) for t in a.targets]) for a in out.audit] == [
        ("canary", [("canary-eu", "apps/edge")]),
        ("wave-1", [("eu-1", "apps/edge")]),
        ("wave-2", [("eu-2", "apps/edge"), ("us-1", "apps/edge")]),
    ]
    order = [k for k, _ in harness.world.deployments]
    assert order[:2] == ["canary-eu:apps/edge", "eu-1:apps/edge"]
    assert sorted(order[2:]) == ["eu-2:apps/edge", "us-1:apps/edge"]  # the last wave two at a time
    assert set(harness.world.vectors.values()) == {f"{VECTOR}:2026.12.1"}


async def test_a_bad_release_typed_into_the_ui_fails_the_run_with_its_path(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Raw JSON (the Temporal UI) that nothing validated before: the production worker fails the run with the
    path instead of retrying the workflow task forever."""
    data = release(tmp_path, {A: "1.4.0"})
    data["spec"]["release"]["components"].append({"component": A, "version": "1.5.0"})
    async with build_workers(ts_env.client, [queues.KONFIDENCE])[0]:
        handle = await ts_env.client.start_workflow(
            "PromotionWorkflow",
            {"promotion": data, "version": "2026.12.1"},
            id=f"promotion-bad-{uuid.uuid4().hex[:6]}",
            task_queue=queues.KONFIDENCE,
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), timeout=60)
    assert "spec.release.components[1].component" in str(failure.value.cause)
