"""Cluster lifecycle workflows: create, upgrade, maintain, delete (queue `gardener`).

Deterministic orchestration only: every garden access is an activity (see
:mod:`activities.gardener.activities`), called by name so this module imports no I/O code.
Each workflow answers the ``status`` query (phase, message, upgrade plan, applied steps, readiness).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, NoReturn, Protocol

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from workflows.failures import as_non_retryable

with workflow.unsafe.imports_passed_through():
    from definitions.cluster import (
        NON_RETRYABLE,
        ApplyShootInput,
        CandidatesInput,
        CandidatesResult,
        ClusterCreateInput,
        ClusterCreateResult,
        ClusterDeleteInput,
        ClusterDeleteResult,
        ClusterMaintainInput,
        ClusterMaintainResult,
        ClusterStatus,
        ClusterUpgradeInput,
        ClusterUpgradeResult,
        DeleteShootInput,
        GardenRef,
        PatchShootInput,
        PlanInput,
        ShootRef,
        WaitShootInput,
    )
    from definitions.cluster_plan import PlanStep, Readiness, UpgradePlan, in_maintenance_window, seconds_until_window
    from definitions.freeze import FreezeCarry
    from workflows.activity_options import HEARTBEAT_TIMEOUT, SHORT_CALL
    from workflows.freeze_guard import CLUSTER_CONTINUE_PATCH, FREEZE_PATCH, HistoryBound, hold_while_frozen

#: Short garden calls: retried by Temporal (client retries are off), bounded.
CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=30,
    non_retryable_error_types=list(NON_RETRYABLE),
)


async def _call(activity: str, arg: Any, result_type: type) -> Any:
    return await workflow.execute_activity(
        activity,
        arg,
        result_type=result_type,
        start_to_close_timeout=SHORT_CALL,
        retry_policy=CALL_RETRY,
    )


def _fail(err: BaseException) -> ApplicationError:
    """Turn an activity/child failure into the workflow's own non-retryable failure, keeping its message."""
    return as_non_retryable(err, "ClusterWorkflowError")


class _AutoRetry(Protocol):
    """The inputs' fields that say which Failed codes to hand back to Gardener with `retry`."""

    auto_retry_codes: list[str]
    max_auto_retries: int
    auto_retry_delay_seconds: float


class _Bounded(Protocol):
    """The inputs' fields for bounded histories while a freeze holds the run."""

    continue_as_new_after: int
    carried: FreezeCarry | None


class _Waiting:
    """Shared by the workflows: the `status` query, one phase's garden call, and the wait for ready
    with Gardener `retry` for transient Failed codes."""

    def __init__(self) -> None:
        self._status = ClusterStatus()
        #: Set by ``_hold_bound``: a freeze point held past it makes the run continue as new there.
        self._bound: HistoryBound | None = None
        self._continued = 0

    @workflow.query
    def status(self) -> ClusterStatus:
        return self._status

    def _hold_bound(self, inp: _Bounded) -> FreezeCarry | None:
        """Bound the run's history while a freeze holds it; returns what an earlier run of the chain
        carried over (None on a fresh start)."""
        self._bound = HistoryBound(CLUSTER_CONTINUE_PATCH, inp.continue_as_new_after)
        if inp.carried is not None:
            self._continued = inp.carried.continued
        return inp.carried

    async def _freeze_point(self, what: str) -> bool:
        """Before acting on the fleet: wait while the landscape is frozen (status shows by whom and why).
        Guarded: histories from before the freeze check replay without it. True: the hold passed the
        run's history bound; the caller continues as new here (``_continue_held``)."""
        if not workflow.patched(FREEZE_PATCH):
            return False
        phase = self._status.phase
        bound = self._bound
        verdict = await hold_while_frozen(what, self._frozen_phase, stop=bound.park if bound else None)
        if bound is not None and bound.continuing:
            return True
        if self._status.phase == "frozen":
            self._status.phase = phase if phase != "frozen" else "resuming"
        if verdict.frozen and verdict.exemption is None:
            self._status.message = f"{what}: freeze lifted"
        return False

    async def _continue_held(
        self, inp: BaseModel, resume_at: int = 0, done: BaseModel | None = None, cleared: list[str] | None = None
    ) -> NoReturn:
        """Continue as new from a freeze point, carrying what this run has done."""
        carry = FreezeCarry(
            continued=self._continued + 1,
            resume_at=resume_at,
            done=done.model_dump(mode="json") if done is not None else {},
            cleared=cleared or [],
        )
        self._status.message += f" (continuing as new: {carry.continued})"
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(inp.model_copy(update={"carried": carry}))

    def _frozen_phase(self, message: str) -> None:
        if "waiting:" in message:
            self._status.phase = "frozen"
        self._status.message = message

    async def _step(self, phase: str, activity: str, arg: Any, result_type: type) -> Any:
        """Show ``phase`` in the status, then one garden call; its failure fails the workflow
        (non-retryably, with the call's own message and type)."""
        self._status.phase = phase
        try:
            return await _call(activity, arg, result_type)
        except ActivityError as err:
            raise _fail(err) from None

    async def _wait(
        self,
        name: str,
        namespace: str,
        garden: GardenRef,
        timeout_s: float,
        min_generation: int = 0,
        expect_gone: bool = False,
    ) -> Readiness:
        deadline = workflow.now().timestamp() + timeout_s
        inp = WaitShootInput(
            name=name,
            namespace=namespace,
            garden=garden,
            deadline_epoch=deadline,
            min_generation=min_generation,
            expect_gone=expect_gone,
        )
        result: Readiness = await workflow.execute_activity(
            "gardener_wait_shoot",
            inp,
            result_type=Readiness,
            start_to_close_timeout=timedelta(seconds=timeout_s + 120),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=10),
                non_retryable_error_types=list(NON_RETRYABLE),
            ),
        )
        return result

    async def _wait_ready(
        self,
        name: str,
        namespace: str,
        garden: GardenRef,
        timeout_s: float,
        min_generation: int,
        auto: _AutoRetry,
    ) -> Readiness:
        retry_codes, max_retries, retry_delay = (
            auto.auto_retry_codes,
            auto.max_auto_retries,
            auto.auto_retry_delay_seconds,
        )
        retries = 0
        while True:
            try:
                ready = await self._wait(name, namespace, garden, timeout_s, min_generation)
                self._status.readiness = ready
                return ready
            except ActivityError as err:
                cause = err.cause
                codes: list[str] = []
                if isinstance(cause, ApplicationError) and cause.type == "ShootFailed" and cause.details:
                    detail: Any = cause.details[0]
                    codes = list(detail.get("codes", [])) if isinstance(detail, dict) else []
                if not (set(codes) & set(retry_codes)) or retries >= max_retries:
                    raise _fail(err) from None
                retries += 1
                self._status.message = (
                    f"Failed with {', '.join(codes)}; asking Gardener to retry "
                    f"({retries}/{max_retries}) in {retry_delay:.0f}s"
                )
                await workflow.sleep(retry_delay)
                ref = await _call(
                    "gardener_annotate_shoot",
                    DeleteShootInput(name=name, namespace=namespace, garden=garden),
                    ShootRef,
                )
                min_generation = ref.generation


@workflow.defn(name="ClusterCreateWorkflow")
class ClusterCreateWorkflow(_Waiting):
    """Apply the Shoot (or adopt it), then wait until ready by the generation rule."""

    @workflow.run
    async def run(self, inp: ClusterCreateInput) -> ClusterCreateResult:
        c = inp.cluster
        ref = await self._step(
            "applying", "gardener_apply_shoot", ApplyShootInput(cluster=c, garden=inp.garden), ShootRef
        )
        self._status.phase = "waiting"
        self._status.message = ref.note or ("created" if ref.created else "exists; waiting until ready")
        ready = await self._wait_ready(
            c.name, c.project_namespace, inp.garden, inp.timeout_seconds, ref.generation, inp
        )
        self._status.phase = "ready"
        return ClusterCreateResult(
            name=c.name,
            namespace=c.project_namespace,
            kubernetes_version=ref.kubernetes_version,
            created=ref.created,
            ready_resource_version=ready.resource_version,
            ready_observed_at=ready.observed_at,
            technical_id=f"shoot--{c.project_namespace.removeprefix('garden-')}--{c.name}",
        )


@workflow.defn(name="ClusterUpgradeWorkflow")
class ClusterUpgradeWorkflow(_Waiting):
    """Plan from the CloudProfile, publish the plan (query `status`), then patch step by step,
    waiting for ready after each. ``dry_run`` stops after planning."""

    @workflow.run
    async def run(self, inp: ClusterUpgradeInput) -> ClusterUpgradeResult:
        carried = self._hold_bound(inp)
        if carried is not None:  # held by a freeze in an earlier run of the chain: the same step next
            result = ClusterUpgradeResult.model_validate(carried.done)
            plan = result.plan
            self._status.plan, self._status.applied = plan, list(result.applied)
        else:
            plan = await self._plan(inp)
            result = ClusterUpgradeResult(
                name=inp.name,
                namespace=inp.project_namespace,
                plan=plan,
                dry_run=inp.dry_run,
                kubernetes_version=plan.current,
            )
            if inp.dry_run:
                return result
        steps = plan.steps or [
            # Nothing to change: still make sure what is there is rolled out and ready (a re-run after
            # a crash, or a change held back by confineSpecUpdateRollout).
            PlanStep(target="controlPlane", kubernetes_version=plan.current, reason="settle: already planned")
        ]
        for index, step in enumerate(steps):
            if carried is not None and index < carried.resume_at:
                continue  # applied by an earlier run of the chain
            what = step.kubernetes_version or f"image {step.machine_image_version}"
            if await self._freeze_point(f"upgrade {inp.project_namespace}/{inp.name} {step.target} to {what}"):
                await self._continue_held(inp, index, result)
            ref = await self._step(
                f"upgrading {step.target} to {what}",
                "gardener_patch_shoot",
                PatchShootInput(
                    name=inp.name,
                    namespace=inp.project_namespace,
                    step=step,
                    garden=inp.garden,
                    force_reconcile=inp.confined_rollout == "reconcile",
                ),
                ShootRef,
            )
            await self._wait_ready(
                inp.name, inp.project_namespace, inp.garden, inp.step_timeout_seconds, ref.generation, inp
            )
            if not plan.steps:
                break
            result.applied.append(step)
            self._status.applied.append(step)
            if step.target == "controlPlane" and step.kubernetes_version:
                result.kubernetes_version = step.kubernetes_version
        self._status.phase = "done"
        return result

    async def _plan(self, inp: ClusterUpgradeInput) -> UpgradePlan:
        plan: UpgradePlan = await self._step(
            "planning",
            "gardener_plan_upgrade",
            PlanInput(
                name=inp.name,
                namespace=inp.project_namespace,
                target_version=inp.target_version,
                machine_image_version=inp.machine_image_version,
                upgrade_workers=inp.upgrade_workers,
                allow_preview=inp.allow_preview,
                garden=inp.garden,
            ),
            UpgradePlan,
        )
        self._status.plan = plan
        self._status.phase = "planned"
        self._status.message = " -> ".join([plan.current, *plan.versions()]) if plan.steps else "nothing to do"
        return plan


@workflow.defn(name="ClusterDeleteWorkflow")
class ClusterDeleteWorkflow(_Waiting):
    """Annotate with the deletion confirmation, delete, and wait until the Shoot is gone."""

    @workflow.run
    async def run(self, inp: ClusterDeleteInput) -> ClusterDeleteResult:
        self._status.phase = "deleting"
        try:
            existed = await _call(
                "gardener_delete_shoot",
                DeleteShootInput(name=inp.name, namespace=inp.project_namespace, garden=inp.garden),
                bool,
            )
            if existed:
                self._status.phase = "waiting until gone"
                await self._wait(inp.name, inp.project_namespace, inp.garden, inp.timeout_seconds, expect_gone=True)
        except ActivityError as err:
            raise _fail(err) from None
        self._status.phase = "deleted"
        return ClusterDeleteResult(name=inp.name, namespace=inp.project_namespace, existed=existed)


@workflow.defn(name="ClusterMaintainWorkflow")
class ClusterMaintainWorkflow(_Waiting):
    """For a fleet: upgrade shoots whose versions are deprecated or expire within N days, inside each
    shoot's maintenance window (skipped outside it unless ``wait_for_window`` or ``ignore_windows``).
    This is what a schedule runs."""

    @workflow.run
    async def run(self, inp: ClusterMaintainInput) -> ClusterMaintainResult:
        carried = self._hold_bound(inp)
        if carried is not None:  # held by a freeze in an earlier run of the chain
            result = ClusterMaintainResult.model_validate(carried.done)
            finished = {*result.upgraded, *result.planned, *result.skipped, *result.failed}
            todo = [c for c in result.candidates if c.name not in finished]
        else:
            found: CandidatesResult = await self._step(
                "finding candidates",
                "gardener_maintenance_candidates",
                CandidatesInput(
                    namespace=inp.project_namespace,
                    names=inp.names,
                    expiring_within_days=inp.expiring_within_days,
                    allow_preview=inp.allow_preview,
                    garden=inp.garden,
                ),
                CandidatesResult,
            )
            result = ClusterMaintainResult(candidates=found.candidates)
            todo = found.candidates
        cleared = set(carried.cleared) if carried is not None else set()
        held: list[str] = []  # past their window, parked at the freeze point: the next run goes on
        self._status.phase = "upgrading"

        async def one(cand: Any) -> None:
            if cand.target_version is None and cand.machine_image_version is None:
                result.skipped[cand.name] = "; ".join(cand.reasons)
                return
            now = workflow.now()
            if (
                cand.name not in cleared
                and not inp.ignore_windows
                and not in_maintenance_window(now, cand.window_begin, cand.window_end)
            ):
                wait = seconds_until_window(now, cand.window_begin, cand.window_end)
                if not inp.wait_for_window:
                    result.skipped[cand.name] = (
                        f"outside its maintenance window {cand.window_begin}-"
                        f"{cand.window_end}; next window in {wait / 3600:.1f} h"
                    )
                    return
                await workflow.sleep(wait)
            if not inp.dry_run and await self._freeze_point(f"maintain {cand.namespace}/{cand.name}"):
                held.append(cand.name)
                return
            try:
                child: ClusterUpgradeResult = await workflow.execute_child_workflow(
                    "ClusterUpgradeWorkflow",
                    ClusterUpgradeInput(
                        name=cand.name,
                        project_namespace=cand.namespace,
                        target_version=cand.target_version,
                        machine_image_version=cand.machine_image_version,
                        allow_preview=inp.allow_preview,
                        dry_run=inp.dry_run,
                        garden=inp.garden,
                        step_timeout_seconds=inp.step_timeout_seconds,
                    ),
                    id=f"{workflow.info().workflow_id}/{cand.name}",
                    task_queue=workflow.info().task_queue,
                    result_type=ClusterUpgradeResult,
                )
                if inp.dry_run:
                    result.planned[cand.name] = [
                        f"{s.target} -> {s.kubernetes_version or s.machine_image_version}" for s in child.plan.steps
                    ]
                else:
                    result.upgraded.append(cand.name)
            except ChildWorkflowError as err:
                result.failed[cand.name] = _fail(err).message

        await asyncio.gather(*(one(c) for c in todo))
        if held:  # every candidate finished or parked, no child running: the safe point
            await self._continue_held(inp, done=result, cleared=held)
        self._status.phase = "done"
        return result


WORKFLOWS = [ClusterCreateWorkflow, ClusterUpgradeWorkflow, ClusterDeleteWorkflow, ClusterMaintainWorkflow]
