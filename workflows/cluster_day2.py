"""Day-2 cluster workflows (queue ``gardener``): credential rotation and hibernation.

Orchestration only; garden access is in :mod:`activities.gardener.day2` (called by name). Both answer
the ``status`` query like the other cluster workflows (phase, message, readiness).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from definitions.cluster import ShootKey
    from definitions.cluster_day2 import (
        ROTATE_COMPLETE,
        ROTATE_START,
        HibernationInput,
        HibernationResult,
        HibernationState,
        OperationInput,
        OperationResult,
        RotateCredentialsInput,
        RotateCredentialsResult,
        RotationPhases,
        SetHibernationInput,
    )
    from workflows.cluster import _call, _fail, _Waiting


@workflow.defn(name="ClusterRotateCredentialsWorkflow")
class ClusterRotateCredentialsWorkflow(_Waiting):
    """``rotate-credentials-start`` -> ready and every phased credential ``Prepared`` -> (pause) ->
    ``rotate-credentials-complete`` -> ready and ``Completed``. Re-running finds a phase already
    reached and does not annotate again."""

    async def _half(
        self, inp: RotateCredentialsInput, op: str, want: str, result: RotateCredentialsResult
    ) -> RotationPhases:
        if await self._freeze_point(f"{op} {inp.project_namespace}/{inp.name}"):
            await self._continue_held(inp, 0 if op == ROTATE_START else 1, result)
        self._status.phase = f"{op}"
        try:
            res: OperationResult = await _call(
                "gardener_rotation_operation",
                OperationInput(name=inp.name, namespace=inp.project_namespace, operation=op, garden=inp.garden),
                OperationResult,
            )
            self._status.message = (
                f"annotated gardener.cloud/operation={op}" if res.annotated else f"{op}: already {res.phases.summary()}"
            )
            self._status.phase = f"waiting for {want}"
            self._status.readiness = await self._wait(
                inp.name, inp.project_namespace, inp.garden, inp.step_timeout_seconds, res.generation
            )
            phases: RotationPhases = await _call(
                "gardener_rotation_phases",
                ShootKey(name=inp.name, namespace=inp.project_namespace, garden=inp.garden),
                RotationPhases,
            )
        except ActivityError as err:
            raise _fail(err) from None
        if not phases.all_in(want):
            raise ApplicationError(
                f"shoot {inp.project_namespace}/{inp.name} is ready but its credentials are not {want}: "
                f"{phases.summary()}; look at status.credentials.rotation",
                type="RotationIncomplete",
                non_retryable=True,
            )
        self._status.message = f"{want}: {phases.summary()}"
        return phases

    @workflow.run
    async def run(self, inp: RotateCredentialsInput) -> RotateCredentialsResult:
        carried = self._hold_bound(inp)
        if carried is not None:  # held by a freeze in an earlier run of the chain: at the same half
            result = RotateCredentialsResult.model_validate(carried.done)
        else:
            result = RotateCredentialsResult(name=inp.name, namespace=inp.project_namespace)
        first = carried.resume_at if carried is not None else 0
        if inp.phase in ("both", "start") and first == 0:
            result.phases = await self._half(inp, ROTATE_START, "Prepared", result)
            result.started = True
        if inp.phase == "both" and inp.pause_seconds and first == 0:
            self._status.phase = "prepared; pausing before completion"
            await workflow.sleep(timedelta(seconds=inp.pause_seconds))
        if inp.phase in ("both", "complete"):
            result.phases = await self._half(inp, ROTATE_COMPLETE, "Completed", result)
            result.completed = True
        self._status.phase = "done"
        return result


@workflow.defn(name="ClusterHibernationWorkflow")
class ClusterHibernationWorkflow(_Waiting):
    """Set ``spec.hibernation`` (enabled and/or schedules); when ``enabled`` is given, wait until the
    shoot is ready and ``status.hibernated`` says so."""

    @workflow.run
    async def run(self, inp: HibernationInput) -> HibernationResult:
        key = ShootKey(name=inp.name, namespace=inp.project_namespace, garden=inp.garden)
        verb = {True: "hibernating", False: "waking up", None: "setting schedules"}[inp.enabled]
        self._hold_bound(inp)  # (nothing done before its one freeze point: a continued run starts over there)
        if await self._freeze_point(f"{verb} {inp.project_namespace}/{inp.name}"):
            await self._continue_held(inp)
        self._status.phase = verb
        try:
            state: HibernationState = await _call(
                "gardener_set_hibernation",
                SetHibernationInput(
                    name=inp.name,
                    namespace=inp.project_namespace,
                    enabled=inp.enabled,
                    schedules=inp.schedules,
                    garden=inp.garden,
                ),
                HibernationState,
            )
            changed = state.changed
            if inp.enabled is not None:
                self._status.phase = f"{verb}: waiting for the shoot"
                self._status.readiness = await self._wait(
                    inp.name, inp.project_namespace, inp.garden, inp.timeout_seconds, state.generation
                )
                state = await _call("gardener_hibernation_state", key, HibernationState)
                if state.hibernated != inp.enabled:
                    raise ApplicationError(
                        f"shoot {inp.project_namespace}/{inp.name} is ready but status.hibernated is "
                        f"{state.hibernated} (wanted {inp.enabled}); a hibernation schedule may have "
                        "changed it meanwhile",
                        type="HibernationMismatch",
                        non_retryable=True,
                    )
        except ActivityError as err:
            raise _fail(err) from None
        self._status.phase = "done"
        return HibernationResult(
            name=inp.name,
            namespace=inp.project_namespace,
            hibernated=state.hibernated,
            changed=changed,
            schedules=state.schedules,
        )


WORKFLOWS = [ClusterRotateCredentialsWorkflow, ClusterHibernationWorkflow]
