"""Day-2 activities on the ``gardener`` queue: credential rotation annotations and hibernation.

Each reads the Shoot first, so a re-run (a retried attempt, a replayed workflow) does not annotate
twice: an annotation already pending, a phase already reached or in progress, a hibernation state
already set are reported, not repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.gardener.client import MERGE, garden, get_shoot, patch_shoot_body, raise_for
from definitions.cluster import ShootKey
from definitions.cluster_day2 import (
    PHASED_CREDENTIALS,
    ROTATE_COMPLETE,
    ROTATE_START,
    HibernationSchedule,
    HibernationState,
    OperationInput,
    OperationResult,
    RotationPhases,
    SetHibernationInput,
)

OPERATION = "gardener.cloud/operation"


def rotation_phases(shoot: dict[str, Any]) -> RotationPhases:
    rot = (((shoot.get("status") or {}).get("credentials") or {}).get("rotation")) or {}
    ca = rot.get("certificateAuthorities") or {}
    return RotationPhases(
        phases={c: str((rot.get(c) or {}).get("phase") or "") for c in PHASED_CREDENTIALS},
        last_initiation_time=str(ca.get("lastInitiationTime") or ""),
        last_completion_time=str(ca.get("lastCompletionTime") or ""),
    )


def _needs(op: str, shoot: dict[str, Any]) -> bool:
    """Whether ``op`` still has to be annotated (False: pending, running, or reached already)."""
    if ((shoot["metadata"].get("annotations") or {}).get(OPERATION)) == op:
        return False
    phases = rotation_phases(shoot)
    if op == ROTATE_START:
        return not (phases.all_in("Preparing") or phases.all_in("Prepared"))
    return not (phases.all_in("Completing") or phases.all_in("Completed"))


async def _shoot(co: Any, namespace: str, name: str) -> dict[str, Any]:
    shoot = await get_shoot(co, namespace, name)
    if shoot is None:
        raise ApplicationError(f"shoot {namespace}/{name} does not exist", type="ShootNotFound", non_retryable=True)
    return shoot


@activity.defn(name="gardener_rotation_operation")
async def rotation_operation(inp: OperationInput) -> OperationResult:
    if inp.operation not in (ROTATE_START, ROTATE_COMPLETE):
        raise ApplicationError(
            f"unknown rotation operation {inp.operation!r}", type="ShootRejected", non_retryable=True
        )
    async with garden(inp.garden) as co:
        shoot = await _shoot(co, inp.namespace, inp.name)
        if not _needs(inp.operation, shoot):
            return OperationResult(
                annotated=False, generation=int(shoot["metadata"]["generation"]), phases=rotation_phases(shoot)
            )
        try:
            obj = await patch_shoot_body(
                co, inp.namespace, inp.name, {"metadata": {"annotations": {OPERATION: inp.operation}}}, MERGE
            )
        except ApiException as exc:
            raise_for(exc, f"annotating shoot {inp.namespace}/{inp.name} with {inp.operation}")
            raise
        return OperationResult(
            annotated=True, generation=int(obj["metadata"]["generation"]), phases=rotation_phases(obj)
        )


@activity.defn(name="gardener_rotation_phases")
async def read_rotation(inp: ShootKey) -> RotationPhases:
    async with garden(inp.garden) as co:
        return rotation_phases(await _shoot(co, inp.namespace, inp.name))


def _state(shoot: dict[str, Any], changed: bool = False) -> HibernationState:
    hib = (shoot.get("spec") or {}).get("hibernation") or {}
    return HibernationState(
        generation=int(shoot["metadata"]["generation"]),
        enabled=bool(hib.get("enabled")),
        hibernated=bool((shoot.get("status") or {}).get("hibernated")),
        changed=changed,
        schedules=[HibernationSchedule.model_validate(s) for s in hib.get("schedules") or []],
    )


@activity.defn(name="gardener_set_hibernation")
async def set_hibernation(inp: SetHibernationInput) -> HibernationState:
    """Merge-patch ``spec.hibernation`` where it differs (no write when it already matches)."""
    async with garden(inp.garden) as co:
        shoot = await _shoot(co, inp.namespace, inp.name)
        current = _state(shoot)
        patch: dict[str, Any] = {}
        if inp.enabled is not None and current.enabled != inp.enabled:
            patch["enabled"] = inp.enabled
        if inp.schedules is not None:
            want = [s.model_dump(exclude_none=True) for s in inp.schedules]
            if want != [s.model_dump(exclude_none=True) for s in current.schedules]:
                patch["schedules"] = want
        if not patch:
            return current
        try:
            obj = await patch_shoot_body(co, inp.namespace, inp.name, {"spec": {"hibernation": patch}}, MERGE)
        except ApiException as exc:
            raise_for(exc, f"setting hibernation of shoot {inp.namespace}/{inp.name}")
            raise
        return _state(obj, changed=True)


@activity.defn(name="gardener_hibernation_state")
async def hibernation_state(inp: ShootKey) -> HibernationState:
    async with garden(inp.garden) as co:
        return _state(await _shoot(co, inp.namespace, inp.name))


ACTIVITIES: list[Callable[..., Any]] = [rotation_operation, read_rotation, set_hibernation, hibernation_state]
