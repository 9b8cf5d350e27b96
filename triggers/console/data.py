"""What the console reads from Temporal and the actions it sends, in one place.

Reads: the run listing (visibility, :mod:`definitions.runquery`), a run's ``status`` query, its
definition (from the first event of the current run's history, so a running workflow needs no new
query), and for ``promotion.run`` steps the promotion's own status (rings, gates, "why pending").
Actions are the workflow's updates (their validators refuse what may not happen, nothing changes),
cancellation, and a re-run from a chosen step (a new run, :mod:`definitions.runstart`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from definitions.library import PipelineLibrary
from definitions.pipeline import Pipeline
from definitions.promotion_runs import PromotionStatus
from definitions.runquery import STATE_WORDS, RunFilter, RunSummary, list_runs, request_definition, run_request
from definitions.runs import ApprovalDecision, PipelineStatus, StepState, StepStatus
from definitions.validate import DefinitionError, parse_pipeline

QUERY_TIMEOUT = timedelta(seconds=5)


class RunNotFound(LookupError):
    """No workflow with that id."""


class ActionRefused(ValueError):
    """The workflow's validator (or the run's state) refused the action; nothing changed."""


class Origin(BaseModel):
    """How a run was started (its first history event): who, and for a re-run from where and why."""

    requested_by: str | None = None
    rerun_of: str | None = None
    from_step: str | None = None
    reason: str = ""


class RunView(BaseModel):
    """Everything the run page shows, polled by the page."""

    workflow_id: str
    run_id: str | None = None
    execution: str  # running, succeeded, failed, cancelled, ...
    status: PipelineStatus | None = None
    status_error: str | None = None
    promotions: dict[str, list[PromotionStatus]] = Field(default_factory=dict)
    origin: Origin | None = None


#: run id -> its origin (a start event never changes; bounded so a long-lived console stays small)
_ORIGINS: dict[str, Origin] = {}


async def origin(client: Client, workflow_id: str, run_id: str | None) -> Origin | None:
    if run_id and run_id in _ORIGINS:
        return _ORIGINS[run_id]
    try:
        request = await run_request(client, workflow_id)
    except Exception:  # not a pipeline run, or the history cannot be read now: show nothing
        return None
    found = Origin(requested_by=request.requested_by)
    if request.reuse is not None:
        found.rerun_of, found.from_step = request.reuse.from_run, request.reuse.from_step
        found.reason = request.reuse.reason
    if run_id:
        if len(_ORIGINS) > 1000:
            _ORIGINS.clear()
        _ORIGINS[run_id] = found
    return found


async def runs(client: Client, run_filter: RunFilter, limit: int = 100) -> list[RunSummary]:
    return await list_runs(client, run_filter, limit=limit)


async def _describe(handle: WorkflowHandle[Any, Any]) -> Any:
    try:
        return await handle.describe(rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise RunNotFound(handle.id) from None
        raise


async def view(client: Client, workflow_id: str) -> RunView:
    handle = client.get_workflow_handle(workflow_id)
    description = await _describe(handle)
    status_name = description.status.name if description.status else "RUNNING"
    out = RunView(
        workflow_id=workflow_id, run_id=description.run_id, execution=STATE_WORDS.get(status_name, status_name.lower())
    )
    out.origin = await origin(client, workflow_id, description.run_id)
    try:
        out.status = await handle.query("status", result_type=PipelineStatus, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, Exception) as exc:  # a closed run without a worker cannot answer queries
        out.status_error = f"the run's status query did not answer: {exc}"
        return out
    for step in out.status.steps:
        if step.uses == "promotion.run" and step.state is not StepState.PENDING:
            found = await _promotions(client, _step_children(workflow_id, step))
            if not found and step.state in (StepState.SUCCEEDED, StepState.FAILED):
                found = await _ended_promotion(client, handle, description.run_id, step.name)
            if found:
                out.promotions[step.name] = found
    return out


#: (run id, step) -> the final status of the promotion an ended promotion.run step ran (it never changes)
_ENDED: dict[tuple[str, str], list[PromotionStatus]] = {}


async def _ended_promotion(
    client: Client, handle: WorkflowHandle[Any, Any], run_id: str | None, step: str
) -> list[PromotionStatus]:
    """The promotion of an ended step (no longer a pending child): its id from the step's outputs."""
    key = (run_id or handle.id, step)
    if key in _ENDED:
        return _ENDED[key]
    try:
        outputs = await handle.query("outputs", step, rpc_timeout=QUERY_TIMEOUT)
        wid = outputs.get("workflow_id") if isinstance(outputs, dict) else None
        if not wid:
            return []
        promotion = client.get_workflow_handle(wid)
        found = [await promotion.query("status", result_type=PromotionStatus, rpc_timeout=QUERY_TIMEOUT)]
    except Exception:
        return []
    if len(_ENDED) > 1000:
        _ENDED.clear()
    _ENDED[key] = found
    return found


def _step_children(workflow_id: str, step: StepStatus) -> list[str]:
    """The child workflows of a step: recorded (forEach chunks, sub-pipelines), else the engine's
    deterministic id for a single child workflow step (`<run id>/<step>`, workflows.stepexec)."""
    return step.child_workflow_ids or [f"{workflow_id}/{step.name}"]


async def _promotions(client: Client, child_ids: list[str]) -> list[PromotionStatus]:
    """The PromotionWorkflow under each PromotionStepWorkflow child (its pending child)."""
    found: list[PromotionStatus] = []
    for child_id in child_ids:
        try:
            description = await client.get_workflow_handle(child_id).describe(rpc_timeout=QUERY_TIMEOUT)
            for pending in description.raw_description.pending_children:
                found.append(
                    await client.get_workflow_handle(pending.workflow_id).query(
                        "status", result_type=PromotionStatus, rpc_timeout=QUERY_TIMEOUT
                    )
                )
        except Exception:
            continue
    return found


async def definition(client: Client, workflow_id: str) -> Pipeline:
    """The pipeline the current run interprets, from its start event (or the library by name)."""
    try:
        request = await run_request(client, workflow_id)
    except LookupError:
        raise RunNotFound(workflow_id) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise RunNotFound(workflow_id) from None
        raise
    data, _ = request_definition(request)
    try:
        return parse_pipeline(data or PipelineLibrary().load(request.pipeline or ""), f"run {workflow_id}")
    except DefinitionError as exc:
        raise ActionRefused(f"the run's definition does not parse: {exc}") from None


# --- actions -------------------------------------------------------------------------------------

#: Action name -> (update name, does it need a step, is a reason required).
ACTIONS: dict[str, tuple[str | None, bool, bool]] = {
    "approve": ("approve", True, False),
    "reject": ("approve", True, True),
    "retry": ("retry_step", True, True),
    "skip": ("skip_step", True, True),
    "pause": ("pause", False, True),
    "resume": ("resume", False, False),
    "cancel": (None, False, True),
    "rerun": (None, True, True),  # a new run from the step (finished runs too), not an update
}


class ActionRequest(BaseModel):
    step: str | None = None
    reason: str = ""
    outputs: Any = None
    #: approve/reject a promotion's approval gate (``ring/gate``) under the ``promotion.run`` step `step`.
    gate: str | None = None


async def act(
    client: Client,
    workflow_id: str,
    action: str,
    actor: str,
    req: ActionRequest,
    *,
    search_attributes_ok: bool = False,
) -> dict[str, Any]:
    """Send one action as `actor`. Raises ActionRefused with the validator's reason when refused."""
    if action not in ACTIONS:
        raise ActionRefused(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    update, needs_step, needs_reason = ACTIONS[action]
    if needs_step and not req.step:
        raise ActionRefused(f"{action} needs a step")
    if needs_reason and not req.reason.strip():
        raise ActionRefused(f"{action} needs a reason (it is recorded with who acted and when)")
    handle = client.get_workflow_handle(workflow_id)
    description = await _describe(handle)
    if action == "rerun":
        return await _rerun(client, workflow_id, actor, req, search_attributes_ok)
    if description.status not in (None, WorkflowExecutionStatus.RUNNING):
        raise ActionRefused(f"the run has ended ({(description.status.name or '').lower()}); nothing to {action}")
    if update is None:
        await handle.cancel(reason=f"{actor}: {req.reason}")
        return {"action": action, "by": actor, "accepted": True}
    if req.gate and update == "approve":
        return await _decide_gate(client, handle, action, actor, req)
    arg: Any
    if update == "approve":
        arg = ApprovalDecision(step=req.step or "", approver=actor, approve=action == "approve", comment=req.reason)
    else:
        from definitions.runs import RepairRequest

        arg = RepairRequest(step=req.step, by=actor, reason=req.reason, outputs=req.outputs)
    try:
        result = await handle.execute_update(update, arg, rpc_timeout=QUERY_TIMEOUT)
    except WorkflowUpdateFailedError as exc:
        raise ActionRefused(str(getattr(exc.cause, "message", exc.cause))) from None
    except RPCError as exc:
        if "update" in str(exc).lower() and "not" in str(exc).lower():
            raise ActionRefused(f"this run's workflow does not accept {action}: {exc.message}") from None
        raise
    return {"action": action, "by": actor, "accepted": True, "result": result}


async def _rerun(
    client: Client, workflow_id: str, actor: str, req: ActionRequest, search_attributes_ok: bool
) -> dict[str, Any]:
    """`apeiro rerun ID --from STEP`: the new run records who started it, from where and why."""
    from temporalio.client import WorkflowQueryFailedError

    from definitions.runstart import RerunError, rerun

    try:
        started, reused = await rerun(
            client, workflow_id, req.step or "", actor, search_attributes_ok=search_attributes_ok, reason=req.reason
        )
    except (RerunError, DefinitionError) as exc:
        raise ActionRefused(str(exc)) from None
    except WorkflowQueryFailedError as exc:
        raise ActionRefused(f"the run's status cannot be read to re-run it: {exc}") from None
    return {
        "action": "rerun",
        "by": actor,
        "accepted": True,
        "result": {"workflow_id": started.id, "from_step": req.step, "reused": reused},
    }


async def _decide_gate(
    client: Client, handle: WorkflowHandle[Any, Any], action: str, actor: str, req: ActionRequest
) -> dict[str, Any]:
    """A vote on an approval gate of the promotion a ``promotion.run`` step runs (`apeiro promote
    approve|reject`): the promotion's own update, whose validator checks who may approve."""
    status = await handle.query("status", result_type=PipelineStatus, rpc_timeout=QUERY_TIMEOUT)
    step = next((s for s in status.steps if s.name == req.step), None)
    if step is None or step.uses != "promotion.run":
        raise ActionRefused(f"{req.step!r} is not a promotion.run step of this run")
    promotion = next(
        (p for p in await _promotions(client, _step_children(handle.id, step)) if req.gate in p.waiting_approvals),
        None,
    )
    if promotion is None:
        raise ActionRefused(f"the promotion of step {req.step!r} does not wait for an approval at {req.gate!r} now")
    decision = ApprovalDecision(step=req.gate or "", approver=actor, approve=action == "approve", comment=req.reason)
    try:
        result = await client.get_workflow_handle(promotion.workflow_id).execute_update(
            action, decision, rpc_timeout=QUERY_TIMEOUT
        )
    except WorkflowUpdateFailedError as exc:
        raise ActionRefused(str(getattr(exc.cause, "message", exc.cause))) from None
    return {"action": action, "by": actor, "accepted": True, "gate": req.gate, "result": result}
