"""PromotionWorkflow and its coordinator on the time-skipping server (soaks and intervals skip)."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.service import RPCError

from definitions.promotion_runs import (
    ExternalAlert,
    GateOverride,
    GateRef,
    RingState,
    RunState,
)
from definitions.runs import ApprovalDecision
from tests.workflow.promotion.conftest import Harness, definition

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("promotion-ts")]


async def test_promotes_through_three_rings_with_gates_and_approval(harness: Harness) -> None:
    data = definition(harness.tmp)
    handle = await harness.start(data, "1.0.0")
    st = await harness.wait_for(handle, lambda s: bool(s.waiting_approvals))
    assert st.waiting_approvals == ["production/approval"]
    prod = next(r for r in st.rings if r.ring == "production")
    assert "waiting for approval" in prod.pending  # "why is this pending"
    await handle.execute_update(
        "approve", ApprovalDecision(step="production/approval", approver="bob", comment="looks good")
    )
    out = await harness.outcome(handle)
    assert out.status.state is RunState.SUCCEEDED
    assert [r.state for r in out.status.rings] == [RingState.VERIFIED] * 3
    assert harness.world.stages == {
        "default/dev": "1.0.0",
        "default/canary-1": "1.0.0",
        "default/canary-2": "1.0.0",
        "default/prod": "1.0.0",
    }
    # immutable audit: one record per ring attempt, with approvals and measurements
    assert [a.ring for a in out.audit] == ["dev", "canary", "production"]
    canary = out.audit[1]
    metric = next(g for g in canary.gates if g.name == "error-rate")
    assert metric.outcome == "Passed" and len(metric.measurements) == 3
    approval = next(g for g in out.audit[2].gates if g.type == "approval")
    assert [(v.approver, v.comment) for v in approval.votes] == [("bob", "looks good")]
    assert canary.flag_changes[0].changed == ["new-ui"]
    flags = json.loads((harness.tmp / "flags-canary.json").read_text())
    assert flags["flags"]["new-ui"]["defaultVariant"] == "on"
    assert flags["$schema"] == "https://flagd.dev/schema/v0/flags.json"


async def test_metric_breach_rolls_back_to_last_verified_and_blocks_the_version(harness: Harness) -> None:
    data = definition(harness.tmp, approval=False)
    good = await harness.start(data, "1.0.0")
    assert (await harness.outcome(good)).status.state is RunState.SUCCEEDED
    harness.world.metric = lambda n: 0.5  # the new version breaches
    bad = await harness.start(data, "2.0.0")
    out = await harness.outcome(bad)
    assert out.status.state is RunState.FAILED
    canary = next(r for r in out.status.rings if r.ring == "canary")
    assert canary.state is RingState.ROLLED_BACK
    assert canary.rollback_to == "1.0.0"
    assert "result < 0.05" in canary.reason
    stages = harness.world.stages
    assert stages["default/canary-1"] == stages["default/canary-2"] == "1.0.0"
    assert stages["default/prod"] == "1.0.0"  # later rings untouched
    assert next(r for r in out.status.rings if r.ring == "production").state is RingState.STOPPED
    # the flag file is back as it was before the ring
    assert (
        json.loads((harness.tmp / "flags-canary.json").read_text())["flags"]["new-ui"]["metadata"]["apeiroVersion"]
        == "1.0.0"
    )
    # re-promoting the blocked version is refused; with an override reason it runs again
    coord = harness.client.get_workflow_handle(f"promotion-coordinator-{data['metadata']['name']}")
    state = await coord.query("state")
    assert state["last_verified"] == {"dev": "2.0.0", "canary": "1.0.0", "production": "1.0.0"}
    harness.world.metric = lambda n: 0.01
    harness.track(data, "promotion-retry-blocked")
    harness.track(data, "promotion-retry-override")
    again = await harness.client.start_workflow(
        "PromotionWorkflow",
        {"promotion": data, "version": "2.0.0"},
        id="promotion-retry-blocked",
        task_queue="konfidence",
    )
    blocked = await harness.outcome(again)
    assert blocked.status.state is RunState.BLOCKED
    assert "failed ring canary" in blocked.status.message
    forced = await harness.client.start_workflow(
        "PromotionWorkflow",
        {"promotion": data, "version": "2.0.0", "override_reason": "metric fixed upstream"},
        id="promotion-retry-override",
        task_queue="konfidence",
    )
    assert (await harness.outcome(forced)).status.state is RunState.SUCCEEDED


async def test_flaky_metric_errors_are_error_not_failed(harness: Harness) -> None:
    # two query errors in a row reach the limit: Error, retried after backoff, then the metric answers
    harness.world.metric = lambda n: "HTTP 503: prometheus unavailable" if n <= 2 else 0.01
    handle = await harness.start(definition(harness.tmp, approval=False), "1.0.0")
    out = await harness.outcome(handle)
    assert out.status.state is RunState.SUCCEEDED
    # Metric measurements run as local activities (markers), not server-scheduled activities.
    events = (await handle.fetch_history()).events
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert "konfidence.prometheus_query" not in scheduled
    local = [
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    assert len(local) >= 3  # each ring's measurements, the two errors included
    metric = next(g for g in out.audit[1].gates if g.name == "error-rate")
    assert metric.outcome == "Passed"
    assert [m.outcome for m in metric.measurements][:2] == ["Error", "Error"]
    assert not any(a.state is RingState.ROLLED_BACK for a in out.audit)


async def test_persistent_metric_errors_pause_without_rollback(harness: Harness) -> None:
    harness.world.metric = lambda n: "connection refused"
    handle = await harness.start(definition(harness.tmp, approval=False), "1.0.0")
    st = await harness.wait_for(handle, lambda s: any(g.state == "Paused" for r in s.rings for g in r.gates))
    gate = next(g for r in st.rings for g in r.gates if g.state == "Paused")
    assert gate.outcome == "Error" and "paused for a person" in gate.reason
    assert harness.world.stages["default/canary-1"] == "1.0.0"  # nothing rolled back
    await handle.execute_update(
        "override_gate",
        GateOverride(ring="canary", gate="error-rate", by="carol", reason="Prometheus outage, checked dashboards"),
    )
    out = await harness.outcome(handle)
    assert out.status.state is RunState.SUCCEEDED
    canary = out.audit[1]
    assert [(o.gate, o.by) for o in canary.overrides] == [("error-rate", "carol")]
    assert next(g for g in canary.gates if g.name == "error-rate").outcome == "Overridden"


async def test_approval_validator(harness: Harness) -> None:
    handle = await harness.start(definition(harness.tmp), "1.0.0", requested_by="bob")
    await harness.wait_for(handle, lambda s: bool(s.waiting_approvals))
    with pytest.raises(WorkflowUpdateFailedError) as ineligible:
        await handle.execute_update("approve", ApprovalDecision(step="production/approval", approver="mallory"))
    assert "may not approve" in str(ineligible.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as self_approval:
        await handle.execute_update("approve", ApprovalDecision(step="production/approval", approver="bob"))
    assert "four-eyes" in str(self_approval.value.cause)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update("approve", ApprovalDecision(step="production/nope", approver="carol"))
    await handle.execute_update(
        "reject", ApprovalDecision(step="production/approval", approver="carol", comment="not this week")
    )
    out = await harness.outcome(handle)
    assert out.status.state is RunState.REJECTED
    assert harness.world.stages.get("default/prod") is None


async def test_newer_version_supersedes_and_closes_approvals(harness: Harness) -> None:
    data = definition(harness.tmp)
    old = await harness.start(data, "1.0.0")
    await harness.wait_for(old, lambda s: bool(s.waiting_approvals))
    new = await harness.start(data, "1.1.0")
    st = await harness.wait_for(old, lambda s: s.state is RunState.SUPERSEDED)
    assert "superseded by version 1.1.0" in st.message
    # the superseded run ends at once; an approval for it is refused (by the validator while it is still
    # open, by the server once it has closed)
    with pytest.raises((WorkflowUpdateFailedError, RPCError)) as closed:
        await old.execute_update("approve", ApprovalDecision(step="production/approval", approver="bob"))
    assert "superseded" in str(getattr(closed.value, "cause", "")) or "not found" in str(closed.value)
    assert (await harness.outcome(old)).status.state is RunState.SUPERSEDED
    await harness.wait_for(new, lambda s: bool(s.waiting_approvals))
    assert (await harness.status(new)).sequence == 2
    await new.execute_update("approve", ApprovalDecision(step="production/approval", approver="carol"))
    assert (await harness.outcome(new)).status.state is RunState.SUCCEEDED
    assert harness.world.stages["default/prod"] == "1.1.0"


async def test_freeze_window_waits_then_proceeds(harness: Harness) -> None:
    now = (await harness.env.get_current_time()).astimezone(UTC)
    data = definition(
        harness.tmp, approval=False, production={"entryGates": [{"type": "timeWindow", "calendar": "changes"}]}
    )
    data["spec"]["calendars"] = {
        "changes": {
            "timeZone": "Europe/Berlin",
            "deny": [
                {
                    "from": (now - timedelta(hours=1)).isoformat(),
                    "until": (now + timedelta(hours=3)).isoformat(),
                    "note": "release freeze",
                }
            ],
        }
    }
    handle = await harness.start(data, "1.0.0")
    out = await harness.outcome(handle)
    assert out.status.state is RunState.SUCCEEDED
    gate = next(g for g in out.audit[2].gates if g.type == "timeWindow")
    assert gate.outcome == "Passed"
    assert gate.finished_at is not None and gate.finished_at >= now + timedelta(hours=3) - timedelta(minutes=1)


async def test_stage_never_ready_fails_the_ring(harness: Harness) -> None:
    harness.world.never_ready.add("default/canary-2")
    out = await harness.outcome(await harness.start(definition(harness.tmp, approval=False), "1.0.0"))
    assert out.status.state is RunState.FAILED
    canary = out.audit[1]
    assert canary.state is RingState.FAILED
    assert "did not become Ready" in canary.reason
    assert "no verified version to roll back to" in canary.reason
    assert "default/prod" not in harness.world.stages


async def test_external_alert_fails_verification_at_once(harness: Harness) -> None:
    data = definition(harness.tmp, approval=False)
    await (await harness.start(data, "1.0.0")).result()
    handle = await harness.start(data, "1.1.0")
    await harness.wait_for(handle, lambda s: any(r.ring == "dev" and r.state is RingState.VERIFYING for r in s.rings))
    await handle.signal("external_alert", ExternalAlert(message="HighErrorRate firing", ring="dev"))
    out = await harness.outcome(handle)
    assert out.status.state is RunState.FAILED
    assert out.audit[0].state is RingState.ROLLED_BACK
    assert "HighErrorRate" in out.audit[0].reason
    assert harness.world.stages["default/dev"] == "1.0.0"


async def test_unparsable_promql_fails_before_rollout(harness: Harness) -> None:
    data = definition(harness.tmp, approval=False)
    data["spec"]["rings"][1]["verifyGates"][1]["query"] = "sum(rate(errors_total[1m])"
    handle = await harness.start(data, "1.0.0", raw=True)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "unparsable PromQL" in str(failure.value.cause)
    assert harness.world.deployments == []


async def test_retry_gate_after_inconclusive(harness: Harness) -> None:
    values = iter([None])
    harness.world.metric = lambda n: next(values, 0.01)
    handle = await harness.start(definition(harness.tmp, approval=False), "1.0.0")
    await harness.wait_for(handle, lambda s: any(g.outcome == "Inconclusive" for r in s.rings for g in r.gates))
    await handle.signal("retry_gate", GateRef(ring="canary", gate="error-rate"))
    assert (await harness.outcome(handle)).status.state is RunState.SUCCEEDED


async def test_demo_helper_approves_waiting_gates(harness: Harness) -> None:
    from workers.cli.promote import approve_waiting

    data = definition(harness.tmp)
    name = data["metadata"]["name"]
    assert await approve_waiting(harness.client, name, "9.9.9", "bob") == []  # not started: nothing to do
    handle = await harness.start(data, "1.0.0")
    await harness.wait_for(handle, lambda s: bool(s.waiting_approvals))
    assert await approve_waiting(harness.client, name, "1.0.0", "bob") == ["production/approval"]
    assert (await harness.outcome(handle)).status.state is RunState.SUCCEEDED
