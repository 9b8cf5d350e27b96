"""Bounded histories during a long freeze: a fleet rollout whose targets a freeze holds, and a cluster
upgrade held at a freeze point, continue as new once their history passes the bound and go on where
they stood (time-skipping server, the real freeze workflow, an in-memory garden)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.freeze import ACTIVITIES as FREEZE_ACTIVITIES
from definitions import queues
from definitions.cluster import (
    CandidatesInput,
    CandidatesResult,
    ClusterMaintainInput,
    ClusterMaintainResult,
    ClusterUpgradeInput,
    ClusterUpgradeResult,
    MaintenanceCandidate,
    PatchShootInput,
    PlanInput,
    ShootKey,
    ShootRef,
    WaitShootInput,
)
from definitions.cluster_day2 import (
    PHASED_CREDENTIALS,
    ROTATE_COMPLETE,
    ROTATE_START,
    HibernationState,
    OperationInput,
    OperationResult,
    RotateCredentialsInput,
    RotateCredentialsResult,
    RotationPhases,
    SetHibernationInput,
)
from definitions.cluster_plan import PlanStep, Readiness, UpgradePlan
from definitions.freeze import FreezeEnd, FreezeRequest
from definitions.rollout import RolloutInput, RolloutResult, RolloutStatus, SelectInput, WaveApproval
from tests.support import sandboxed_worker
from workers.cli.freeze import update
from workers.cli.rollout import format_status
from workflows.cluster import ClusterMaintainWorkflow, ClusterUpgradeWorkflow
from workflows.cluster_day2 import ClusterHibernationWorkflow, ClusterRotateCredentialsWorkflow
from workflows.freeze import FreezeWorkflow
from workflows.rollout import FleetRolloutWorkflow

pytestmark = [pytest.mark.workflow]

#: The smallest bound an input accepts; one round of rechecks of three held targets costs about 15 events.
BOUND = 50
RECHECK = timedelta(minutes=10)
SHOOTS = ["s0", "s1", "s2", "s3"]


@dataclass
class Garden:
    """The garden calls the workflows make, recorded: each shoot's hibernation, each upgrade patch."""

    client: Client
    env: WorkflowEnvironment
    hibernated: list[str] = field(default_factory=list)
    patched: list[str] = field(default_factory=list)
    plans: int = 0
    patched_shoots: list[str] = field(default_factory=list)
    searches: int = 0
    rotations: list[str] = field(default_factory=list)
    freeze_after_first_patch: bool = False

    def activities(self) -> list[Any]:
        @activity.defn(name="gardener_select_shoots")
        async def select(inp: SelectInput) -> list[str]:
            return list(SHOOTS)

        @activity.defn(name="gardener_set_hibernation")
        async def set_hibernation(inp: SetHibernationInput) -> HibernationState:
            self.hibernated.append(inp.name)
            if inp.name == "s0":
                raise ApplicationError("quota exceeded", type="ShootFailed", non_retryable=True)
            return HibernationState(generation=2, enabled=True, hibernated=True, changed=True)

        @activity.defn(name="gardener_wait_shoot")
        async def wait(inp: WaitShootInput) -> Readiness:
            return Readiness(ready=True, generation=inp.min_generation, observed_generation=inp.min_generation)

        @activity.defn(name="gardener_hibernation_state")
        async def state(inp: ShootKey) -> HibernationState:
            return HibernationState(generation=2, enabled=True, hibernated=True)

        @activity.defn(name="gardener_plan_upgrade")
        async def plan(inp: PlanInput) -> UpgradePlan:
            self.plans += 1
            steps = [PlanStep(target="controlPlane", kubernetes_version=v) for v in ("1.30.8", "1.31.4")]
            return UpgradePlan(current="1.29.5", target="1.31.4", steps=steps)

        @activity.defn(name="gardener_patch_shoot")
        async def patch(inp: PatchShootInput) -> ShootRef:
            self.patched.append(inp.step.kubernetes_version or "")
            self.patched_shoots.append(inp.name)
            if self.freeze_after_first_patch and len(self.patched) == 1:  # the freeze lands mid-upgrade
                await update(
                    activity.client(),
                    "start_freeze",
                    FreezeRequest(reason="incident 4711", by="alice", recheck_seconds=RECHECK.total_seconds()),
                )
            return ShootRef(name=inp.name, namespace=inp.namespace, generation=len(self.patched) + 1)

        @activity.defn(name="gardener_maintenance_candidates")
        async def candidates(inp: CandidatesInput) -> CandidatesResult:
            self.searches += 1
            return CandidatesResult(
                candidates=[
                    MaintenanceCandidate(
                        name="m1",
                        namespace=inp.namespace,
                        kubernetes_version="1.29.5",
                        target_version="1.31.4",
                        reasons=["1.29.5 expires"],
                    ),
                    MaintenanceCandidate(
                        name="m2",
                        namespace=inp.namespace,
                        kubernetes_version="1.29.5",
                        target_version="1.31.4",
                        reasons=["1.29.5 is deprecated"],
                    ),
                    MaintenanceCandidate(
                        name="m3", namespace=inp.namespace, kubernetes_version="1.31.4", reasons=["nothing to do"]
                    ),
                ]
            )

        @activity.defn(name="gardener_rotation_operation")
        async def rotate(inp: OperationInput) -> OperationResult:
            self.rotations.append(inp.operation)
            if inp.operation == ROTATE_START:  # the freeze lands between the halves
                await update(
                    activity.client(),
                    "start_freeze",
                    FreezeRequest(reason="incident 4711", by="alice", recheck_seconds=RECHECK.total_seconds()),
                )
            return OperationResult(annotated=True, generation=len(self.rotations) + 1)

        @activity.defn(name="gardener_rotation_phases")
        async def phases(inp: ShootKey) -> RotationPhases:
            want = "Completed" if ROTATE_COMPLETE in self.rotations else "Prepared"
            return RotationPhases(phases=dict.fromkeys(PHASED_CREDENTIALS, want))

        return [select, set_hibernation, wait, state, plan, patch, candidates, rotate, phases, *FREEZE_ACTIVITIES]


@pytest.fixture
async def garden(ts_env: WorkflowEnvironment) -> AsyncIterator[Garden]:
    g = Garden(ts_env.client, ts_env)
    workflows = [
        FleetRolloutWorkflow,
        ClusterHibernationWorkflow,
        ClusterUpgradeWorkflow,
        ClusterMaintainWorkflow,
        ClusterRotateCredentialsWorkflow,
    ]
    async with (
        sandboxed_worker(ts_env.client, queues.PIPELINE, [FreezeWorkflow], FREEZE_ACTIVITIES),
        sandboxed_worker(ts_env.client, queues.GARDENER, workflows, g.activities()),
    ):
        yield g


async def chain(client: Client, handle: WorkflowHandle[Any, Any]) -> list[int]:
    """The number of events of each run of the chain ``handle`` started (following ContinuedAsNew)."""
    sizes, run_id = [], handle.first_execution_run_id or handle.result_run_id
    while True:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        sizes.append(len(history.events))
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return sizes
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id


async def until(g: Garden, handle: WorkflowHandle[Any, Any], result_type: type, check: Any) -> Any:
    """Poll the status query, moving the clock a minute between polls."""
    st = None
    for _ in range(60):
        st = await handle.query("status", result_type=result_type)
        if check(st):
            return st
        await g.env.sleep(timedelta(minutes=1))
    raise AssertionError(f"never reached; last status {st}")


def rollout_input(**rollout: Any) -> dict[str, Any]:
    return {
        "operation": "cluster.hibernate",
        "with": {"enabled": True},
        "rollout": {"selector": {"namespace": "garden-edge", "matchLabels": {"fleet": "x"}}, **rollout},
    }


async def test_a_rollout_held_by_a_long_freeze_continues_as_new_and_runs_each_target_once(garden: Garden) -> None:
    client = garden.client
    inp = rollout_input(
        waves=[1, "100%"], maxInFlight=3, failureBudget=1, gates=[{"type": "approval", "approvers": ["bob"]}]
    )
    handle = await client.start_workflow(
        "FleetRolloutWorkflow",
        RolloutInput.model_validate({**inp, "continueAsNewAfter": BOUND}),
        id="rollout-long-freeze",
        task_queue=queues.GARDENER,
    )
    await until(garden, handle, RolloutStatus, lambda s: s.waiting_approvals == ["1/approval"])
    await update(
        client,
        "start_freeze",
        FreezeRequest(reason="incident 4711", by="alice", recheck_seconds=RECHECK.total_seconds()),
    )
    await handle.execute_update("approve_wave", WaveApproval(wave=1, approver="bob", comment="go"))
    st = await until(garden, handle, RolloutStatus, lambda s: [t.state for t in s.waves[1].targets] == ["frozen"] * 3)
    assert "frozen by alice" in st.waves[1].targets[0].message
    for _ in range(12):  # two hours frozen, a recheck every ten minutes
        await garden.env.sleep(RECHECK)
    sizes = await chain(client, handle)
    assert len(sizes) >= 3, f"continued as new only {len(sizes) - 1} times: {sizes}"
    assert all(n < BOUND + 40 for n in sizes[:-1]), f"a run went far past the bound: {sizes}"
    st = await handle.query("status", result_type=RolloutStatus)
    assert st.continued == len(sizes) - 1
    assert f"continued: {st.continued} (history bound)" in format_status(st, handle.id).splitlines()[0]
    assert [t.state for t in st.waves[1].targets] == ["frozen"] * 3 and garden.hibernated == ["s0"]
    assert (st.failures, st.budget) == (1, 1) and st.waves[0].targets[0].state == "failed"
    assert [(v.approver, v.comment) for v in st.waves[1].gates[0].votes] == [("bob", "go")]

    await update(client, "end_freeze", FreezeEnd(by="alice"))
    res = RolloutResult.model_validate(await handle.result())
    assert res.state == "done", res.message
    assert Counter(garden.hibernated) == Counter(SHOOTS)  # each target once; the failed canary not again
    assert res.succeeded == ["s1", "s2", "s3"] and list(res.failed) == ["s0"]
    assert res.waves[1].gates[0].outcome == "Passed" and res.waves[1].gates[0].votes[0].approver == "bob"


async def test_a_cluster_upgrade_held_at_a_freeze_point_continues_as_new_and_finishes_once(garden: Garden) -> None:
    client, garden.freeze_after_first_patch = garden.client, True
    handle = await client.start_workflow(
        "ClusterUpgradeWorkflow",
        ClusterUpgradeInput(name="edge-1", target_version="1.31.4", continue_as_new_after=BOUND),
        id="upgrade-long-freeze",
        task_queue=queues.GARDENER,
    )
    for _ in range(15):
        await garden.env.sleep(RECHECK)
    sizes = await chain(client, handle)
    assert len(sizes) >= 3, f"continued as new only {len(sizes) - 1} times: {sizes}"
    assert all(n < BOUND + 30 for n in sizes[:-1]), sizes
    st = await handle.query("status")
    assert st["phase"] == "frozen" and "frozen by alice" in st["message"]
    assert [s["kubernetes_version"] for s in st["applied"]] == ["1.30.8"] and garden.patched == ["1.30.8"]

    await update(client, "end_freeze", FreezeEnd(by="alice"))
    res = ClusterUpgradeResult.model_validate(await handle.result())
    assert [s.kubernetes_version for s in res.applied] == ["1.30.8", "1.31.4"]
    assert res.kubernetes_version == "1.31.4"
    assert garden.patched == ["1.30.8", "1.31.4"] and garden.plans == 1  # planned once, each step once


async def test_a_maintenance_held_by_a_long_freeze_continues_as_new_and_upgrades_each_shoot_once(
    garden: Garden,
) -> None:
    client = garden.client
    await update(
        client,
        "start_freeze",
        FreezeRequest(reason="incident 4711", by="alice", recheck_seconds=RECHECK.total_seconds()),
    )
    handle = await client.start_workflow(
        "ClusterMaintainWorkflow",
        ClusterMaintainInput(ignore_windows=True, continue_as_new_after=BOUND),
        id="maintain-long-freeze",
        task_queue=queues.GARDENER,
    )
    for _ in range(12):
        await garden.env.sleep(RECHECK)
    sizes = await chain(client, handle)
    assert len(sizes) >= 3, f"continued as new only {len(sizes) - 1} times: {sizes}"
    assert all(n < BOUND + 30 for n in sizes[:-1]), sizes
    st = await handle.query("status")
    assert st["phase"] == "frozen" and garden.patched_shoots == []

    await update(client, "end_freeze", FreezeEnd(by="alice"))
    res = ClusterMaintainResult.model_validate(await handle.result())
    assert sorted(res.upgraded) == ["m1", "m2"] and list(res.skipped) == ["m3"] and not res.failed
    assert Counter(garden.patched_shoots) == {"m1": 2, "m2": 2}  # two minors each, once
    assert garden.searches == 1  # the candidates carried, not searched again


async def test_a_credential_rotation_held_between_its_halves_continues_as_new_and_completes_once(
    garden: Garden,
) -> None:
    client = garden.client
    handle = await client.start_workflow(
        "ClusterRotateCredentialsWorkflow",
        RotateCredentialsInput(name="edge-1", continue_as_new_after=BOUND),
        id="rotate-long-freeze",
        task_queue=queues.GARDENER,
    )
    for _ in range(15):
        await garden.env.sleep(RECHECK)
    sizes = await chain(client, handle)
    assert len(sizes) >= 3 and all(n < BOUND + 30 for n in sizes[:-1]), sizes
    assert garden.rotations == [ROTATE_START]
    await update(client, "end_freeze", FreezeEnd(by="alice"))
    res = RotateCredentialsResult.model_validate(await handle.result())
    assert res.started and res.completed and res.phases.all_in("Completed")
    assert garden.rotations == [ROTATE_START, ROTATE_COMPLETE]  # the first half not again


async def test_a_bound_below_the_minimum_is_refused_with_a_clear_message(garden: Garden) -> None:
    with pytest.raises(ValidationError, match=r"continueAsNewAfter\n.*greater than or equal to 50"):
        RolloutInput.model_validate({**rollout_input(), "continueAsNewAfter": 10})
    with pytest.raises(ValidationError, match=r"continue_as_new_after\n.*greater than or equal to 50"):
        ClusterUpgradeInput(name="edge-1", target_version="1.31.4", continue_as_new_after=10)
    # typed into the UI: the run fails once, naming the field, instead of retrying its task forever
    with pytest.raises(WorkflowFailureError) as err:
        await garden.client.execute_workflow(
            "FleetRolloutWorkflow",
            {**rollout_input(), "continueAsNewAfter": 10},
            id="rollout-bad-bound",
            task_queue=queues.GARDENER,
        )
    assert "continueAsNewAfter" in str(err.value.cause) and "50" in str(err.value.cause)
