"""A long promotion continues as new before its history passes the bound, and nothing is lost: gate
progress (measurements taken, the rest of a soak), approvals, the audit and the ring lock carry over."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from definitions import queues
from definitions.promotion_runs import GateStatus, PromotionRequest, RingState, RunState
from definitions.runs import ApprovalDecision
from tests.workflow.promotion.conftest import Harness, definition

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("promotion-ts")]

#: The smallest bound a request accepts; one metric check costs about ten events.
BOUND = 50
CHECKS = 40


def long_definition(harness: Harness) -> dict[str, Any]:
    return definition(
        harness.tmp,
        approval=False,
        dev={"verifyGates": [{"type": "soak", "duration": "1m"}]},
        canary={
            "flags": None,
            "verifyGates": [
                {"type": "soak", "duration": "20m"},
                {"type": "prometheus", "name": "error-rate", "query": "sum(rate(errors_total[1m]))",
                 "successCondition": "result < 0.05", "interval": "30s", "count": CHECKS},
                {"type": "approval", "name": "sign-off", "approvers": ["bob", "carol"], "quorum": 2},
            ],
        },
    )


async def runs_of(harness: Harness, workflow_id: str, first_run: str) -> int:
    """How many runs the chain that started with ``first_run`` has (following ContinuedAsNew)."""
    runs, run_id = 1, first_run
    while True:
        history = await harness.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return runs
        # The bound is checked at the run's safe points; on a loaded machine a gate check between two of
        # them can time out and be retried (a few more events), so allow up to twice the bound: a run
        # that never continued would hold the whole chain's events.
        assert len(history.events) < 2 * BOUND, f"run {runs} went far past the bound: {len(history.events)} events"
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        runs += 1


async def test_a_long_promotion_continues_as_new_and_keeps_its_state(harness: Harness) -> None:
    data = long_definition(harness)
    wid = f"promotion-{data['metadata']['name']}-1.0.0"
    harness.track(data, wid)
    handle = await harness.client.start_workflow(
        "PromotionWorkflow",
        PromotionRequest(promotion=copy.deepcopy(data), version="1.0.0", requested_by="alice",
                         continue_as_new_after=BOUND),
        id=wid,
        task_queue=queues.KONFIDENCE,
    )
    first_run = handle.first_execution_run_id or handle.result_run_id
    assert first_run is not None

    def canary_gate(st: Any, name: str) -> Any:
        canary = next(r for r in st.rings if r.ring == "canary")
        return next((g for g in canary.gates if g.name == name), GateStatus(name=name, type="", phase=""))

    # bob signs off while the metric gate is still early; the vote must survive every continue-as-new
    await harness.wait_for(handle, lambda s: canary_gate(s, "sign-off").state == "Waiting",
                           step=timedelta(seconds=10))
    await handle.execute_update("approve", ApprovalDecision(step="canary/sign-off", approver="bob"))
    await harness.wait_for(handle, lambda s: len(canary_gate(s, "error-rate").measurements) >= 15,
                           step=timedelta(seconds=30))
    assert await runs_of(harness, wid, first_run) > 1  # continued as new mid-verification
    st = await harness.status(handle)
    assert [v.approver for v in canary_gate(st, "sign-off").votes] == ["bob"]
    assert canary_gate(st, "sign-off").state == "Waiting"
    await handle.execute_update("approve", ApprovalDecision(step="canary/sign-off", approver="carol"))
    # the rest (production: upstreamVerified with minSoak) needs only time
    out = await harness.outcome(handle)  # (the result follows the chain)

    assert out.status.state is RunState.SUCCEEDED
    assert [a.ring for a in out.audit] == ["dev", "canary", "production"]  # audit of ring dev survived
    assert [r.state for r in out.status.rings] == [RingState.VERIFIED] * 3
    canary = out.audit[1]
    metric = next(g for g in canary.gates if g.name == "error-rate")
    assert metric.outcome == "Passed"
    assert metric.reason.startswith(f"{CHECKS} measurements, 0 failed")  # counters carried, no restart
    assert harness.world.queries == CHECKS  # each measurement taken once
    soak = next(g for g in canary.gates if g.type == "soak")
    assert soak.started_at is not None and soak.finished_at is not None
    assert timedelta(minutes=20) <= soak.finished_at - soak.started_at < timedelta(minutes=21)  # the rest only
    sign_off = next(g for g in canary.gates if g.name == "sign-off")
    assert [v.approver for v in sign_off.votes] == ["bob", "carol"] and sign_off.outcome == "Passed"
    # deployed once per Stage: a continued run does not deploy the ring again
    assert sorted(harness.world.deployments) == sorted(
        [("default/dev", "1.0.0"), ("default/canary-1", "1.0.0"), ("default/canary-2", "1.0.0"),
         ("default/prod", "1.0.0")])
    assert await runs_of(harness, wid, first_run) >= 3


async def test_a_promotion_held_by_a_long_freeze_continues_as_new_and_deploys_once(harness: Harness) -> None:
    from temporalio.worker import Worker

    from activities.freeze import ACTIVITIES as FREEZE_ACTIVITIES
    from definitions.freeze import FREEZE_WORKFLOW_ID, FreezeEnd, FreezeRequest, FreezeState
    from workers.cli.freeze import handle as freeze_handle
    from workers.worker import workflow_runner
    from workflows.freeze import FreezeWorkflow

    client = harness.client
    async with Worker(client, task_queue=queues.PIPELINE, workflows=[FreezeWorkflow],
                      activities=list(FREEZE_ACTIVITIES), workflow_runner=workflow_runner()):
        freeze = await freeze_handle(client)
        harness.started.append(FREEZE_WORKFLOW_ID)
        await freeze.execute_update("start_freeze", FreezeRequest(reason="incident 4711", by="alice",
                                                                  recheck_seconds=600), result_type=FreezeState)
        data = definition(harness.tmp, approval=False)
        wid = f"promotion-{data['metadata']['name']}-1.2.0"
        harness.track(data, wid)
        handle = await client.start_workflow(
            "PromotionWorkflow",
            PromotionRequest(promotion=copy.deepcopy(data), version="1.2.0", requested_by="alice",
                             continue_as_new_after=BOUND),
            id=wid, task_queue=queues.KONFIDENCE)
        first_run = handle.first_execution_run_id or handle.result_run_id
        assert first_run is not None
        await harness.wait_for(handle, lambda s: "frozen by alice" in s.message, step=timedelta(minutes=1))
        for _ in range(8):  # rechecks every 10 minutes
            await harness.env.sleep(timedelta(minutes=10))
        assert await runs_of(harness, wid, first_run) > 1
        st = await harness.status(handle)
        assert "frozen by alice" in st.message and harness.world.deployments == []
        await freeze.execute_update("end_freeze", FreezeEnd(by="alice"), result_type=FreezeState)
        out = await harness.outcome(handle)
    assert out.status.state is RunState.SUCCEEDED
    assert [d for d in harness.world.deployments if d[0] == "default/dev"] == [("default/dev", "1.2.0")]
