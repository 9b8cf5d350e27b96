"""Deploying a ring's Stages, applying and reverting its flag actions, and rolling it back.

A rollback goes to the ring's last verified version (or, on a ring's first promotion, the one version
every touched Stage ran before) and is never itself rolled back: when it fails, the ring is Failed and
a person fixes the Stages.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from definitions.promotion import Artifact, Ring
from definitions.promotion_runs import (
    FlagApply,
    FlagApplyResult,
    FlagChange,
    FlagRestore,
    RingAttempt,
    RingState,
    StageDeploy,
    StageDeployResult,
)
from workflows.failures import failure_message
from workflows.promotion.gates.base import QUERY_TIMEOUT

DEPLOY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[
        "StageNotReady",
        "StageDeployFailed",
        "StageRejected",
        "StageConfigError",
        "StageDeleted",
    ],
)


def vector(artifact: Artifact, version: str) -> dict[str, Any]:
    """What a Stage is told to run."""
    return {"component": artifact.component, "version": version, "repository": artifact.repository}


async def deploy_targets(ring: Ring, att: RingAttempt, vec: dict[str, Any]) -> list[str]:
    """Deploy ``vec`` to every target of ``ring`` (``ring.parallelism`` at a time); the errors, one a Stage."""
    sem = asyncio.Semaphore(ring.parallelism)
    timeout = ring.ready_timeout

    async def one(i: int) -> str | None:
        target, ts = ring.targets[i], att.targets[i]
        async with sem:
            ts.message = f"deploying {vec['version']}"
            try:
                res = await workflow.execute_activity(
                    "konfidence.deploy_stage",
                    StageDeploy(target=target, vector=vec, ready_timeout_seconds=timeout.total_seconds()),
                    result_type=StageDeployResult,
                    start_to_close_timeout=timeout + timedelta(minutes=2),
                    heartbeat_timeout=timedelta(seconds=15),
                    retry_policy=DEPLOY_RETRY,
                )
            except ActivityError as exc:
                ts.message = failure_message(exc)
                return f"{ts.stage}: {ts.message}"
            if ts.previous_vector is None and not ts.deployed:
                ts.previous_vector = res.previous_vector
            ts.deployed = True
            ts.message = res.message
            return None

    results = await asyncio.gather(*(one(i) for i in range(len(ring.targets))))
    return [r for r in results if r]


async def deploy(ring: Ring, att: RingAttempt, artifact: Artifact, version: str) -> str:
    """Deploy ``version`` to the ring; the errors joined ('' when every Stage is Ready)."""
    att.pending = f"deploying {version} to {len(ring.targets)} Stage(s), {ring.parallelism} at a time"
    errors = await deploy_targets(ring, att, vector(artifact, version))
    return "; ".join(errors)


async def apply_flags(ring: Ring, att: RingAttempt, version: str) -> str:
    """Apply the ring's flag actions, remembering what to revert; the error ('' on success)."""
    if ring.flags is None or not ring.flags.actions:
        return ""
    try:
        res = await workflow.execute_activity(
            "konfidence.apply_flags",
            FlagApply(flags=ring.flags, ring=ring.name, version=version),
            result_type=FlagApplyResult,
            start_to_close_timeout=QUERY_TIMEOUT,
            retry_policy=RetryPolicy(
                maximum_attempts=3, non_retryable_error_types=["FlagFileInvalid", "FlagActionInvalid"]
            ),
        )
    except ActivityError as exc:
        return f"flags: {failure_message(exc)}"
    att.flag_changes.append(FlagChange(path=res.path, changed=res.changed, before=res.before))
    return ""


async def roll_back(ring: Ring, att: RingAttempt, artifact: Artifact, reason: str) -> None:
    """Back to the ring's last verified version; a failing rollback is reported, never rolled back."""
    att.state = RingState.ROLLING_BACK
    for change in att.flag_changes:
        try:
            await workflow.execute_activity(
                "konfidence.restore_flags",
                FlagRestore(path=change.path, before=change.before),
                start_to_close_timeout=QUERY_TIMEOUT,
            )
            change.reverted = True
        except ActivityError as exc:
            att.reason = f"{reason}; reverting flags in {change.path} failed: {failure_message(exc)}"
    touched = [i for i, t in enumerate(att.targets) if t.deployed or t.message]
    if not touched:
        att.state = RingState.FAILED
        att.reason = f"{reason}; nothing was deployed, nothing to roll back"
        return
    target_version = att.rollback_to
    back = vector(artifact, target_version) if target_version is not None else None
    if back is not None and att.rollback_component and att.rollback_component != artifact.component:
        back["component"] = att.rollback_component  # the Stage's vectorHistory has its exact reference
    if target_version is None:
        previous = {
            (str(pv.get("component")), str(pv.get("version"))): pv for t in att.targets if (pv := t.previous_vector)
        }
        if len(previous) == 1:
            (component, target_version), before = previous.popitem()
            # the Stages ran another component before (e.g. one artifact before a release): put exactly that back
            back = vector(artifact, target_version) if component == artifact.component else before
            att.rollback_components = None
    if target_version is None or back is None:
        att.state = RingState.FAILED
        att.reason = f"{reason}; no verified version to roll back to (first promotion of this ring)"
        return
    att.rollback_to = target_version
    sub = ring.model_copy(update={"targets": [ring.targets[i] for i in touched]})
    shadow = att.model_copy(deep=True, update={"targets": [att.targets[i].model_copy() for i in touched]})
    errors = await deploy_targets(sub, shadow, back)
    if errors:
        att.state = RingState.FAILED
        att.reason = (
            f"{reason}; rollback to {target_version} failed ({'; '.join(errors)}); not retried: a "
            "rollback is never rolled back, fix the Stages by hand"
        )
        return
    att.state = RingState.ROLLED_BACK
    att.reason = f"{reason}; rolled back to {target_version}" + _pinned(att.rollback_components)


def _pinned(pins: dict[str, str] | None) -> str:
    """``" (a 1.0, b 2.0)"``: the component versions a release vector pins, for reasons and the audit."""
    if not pins or len(pins) < 2:
        return ""
    return " (" + ", ".join(f"{c} {v}" for c, v in sorted(pins.items())) + ")"
