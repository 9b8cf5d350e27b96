"""From an order (a Kubernetes object of our API) to a pipeline run, and from the run back to `status`.

Pure functions, so the controller's decisions are tested without an API server or Temporal:

- `plan()` turns an order into the pipeline definition and inputs to start, or the problems that
  stop it (each with the path of the bad field in the object, e.g. `spec.inputs.site`).
- `workflow_id()` is deterministic in the consumer's logical cluster and the object's uid, so a
  restarted controller or a repeated event never starts a second run.
- `order_status()` maps Temporal's view of the run (its `status` query and execution state) to the
  object's `status`, keeping each condition's lastTransitionTime while its status holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from definitions.mesh import Kind, Phase, PipelineRunSpec
from definitions.runs import PipelineStatus, StepState
from definitions.validate import DefinitionError, Problem

#: What Temporal says about a closed run -> our phase.
CLOSED = {
    "COMPLETED": Phase.SUCCEEDED,
    "FAILED": Phase.FAILED,
    "CANCELED": Phase.CANCELLED,
    "TERMINATED": Phase.FAILED,
    "TIMED_OUT": Phase.FAILED,
}
TERMINAL = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})


@dataclass
class Plan:
    definition: dict[str, Any] | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    pipeline: str = ""
    problems: list[Problem] = field(default_factory=list)


def workflow_id(cluster: str, kind: Kind, uid: str) -> str:
    """`mesh-<cluster>-<kind>-<uid>`: one run per object, whoever asks and however often."""
    return f"mesh-{cluster}-{kind.singular}-{uid}"


def spec_hash(spec: dict[str, Any]) -> str:
    """A hash of what the run was started from (approvals excluded: adding one is not an edit)."""
    body = {k: v for k, v in spec.items() if k != "approvals"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def plan(kind: Kind, spec: dict[str, Any], load: Any, validate: Any) -> Plan:
    """The run to start for an order, or why none can start.

    `load(name)` returns a catalogue pipeline's definition (KeyError when unknown); `validate(data,
    inputs)` returns `(pipeline, resolved_inputs)` or raises DefinitionError (definitions.validate).
    """
    if kind.step_type is None:
        try:
            run = PipelineRunSpec.model_validate(spec)
        except ValueError as exc:
            return Plan(problems=[Problem("spec", str(exc).splitlines()[0])])
        try:
            data = load(run.pipeline)
        except KeyError as exc:
            return Plan(problems=[Problem("spec.pipeline", str(exc).strip("'\""))])
        given = run.inputs
        prefix = {"inputs": "spec.inputs"}
    else:
        args = {k: v for k, v in spec.items() if k != "approvals"}
        data = {
            "apiVersion": "apeiro.dev/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": kind.singular},
            "spec": {"steps": [{"name": "run", "uses": kind.step_type, "with": args}]},
        }
        given = {}
        prefix = {"spec.steps[0].with": "spec"}
    try:
        pipeline, resolved = validate(data, given)
    except DefinitionError as exc:
        return Plan(problems=[Problem(_field_path(p.path, prefix), p.message) for p in exc.problems])
    return Plan(definition=data, inputs=resolved, pipeline=pipeline.name)


def _field_path(path: str, prefix: dict[str, str]) -> str:
    for old, new in prefix.items():
        if path == old or path.startswith(old + ".") or path.startswith(old + "["):
            return new + path[len(old) :]
    return f"pipeline {path}" if path else "spec"


def condition(
    old: list[dict[str, Any]], type_: str, status: str, reason: str, message: str, generation: int, now: str
) -> dict[str, Any]:
    """A metav1.Condition that keeps its lastTransitionTime while its status does not change."""
    prev = next((c for c in old if c.get("type") == type_), None)
    since = prev["lastTransitionTime"] if prev and prev.get("status") == status else now
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def invalid_status(old: dict[str, Any], problems: list[Problem], generation: int) -> dict[str, Any]:
    conds = old.get("conditions") or []
    message = "; ".join(str(p) for p in problems)
    now = now_rfc3339()
    return {
        **old,
        "phase": Phase.INVALID.value,
        "observedGeneration": generation,
        "message": message,
        "conditions": [
            condition(conds, "Ready", "False", "InvalidSpec", message, generation, now),
            condition(conds, "Succeeded", "False", "NotStarted", "no workflow was started", generation, now),
        ],
    }


def phase_of(execution: str, status: PipelineStatus | None) -> Phase:
    if execution in CLOSED:
        return CLOSED[execution]
    if status is not None and any(s.state is StepState.WAITING and s.uses == "core.approval" for s in status.steps):
        return Phase.AWAITING_APPROVAL
    return Phase.RUNNING


def order_status(
    old: dict[str, Any],
    *,
    wf_id: str,
    run_id: str,
    execution: str,
    run: PipelineStatus | None,
    generation: int,
    started_from: str,
    refused: list[str],
    approvals_sent: int,
    edited: bool,
) -> dict[str, Any]:
    """The object's status for the run as Temporal reports it now."""
    conds = old.get("conditions") or []
    now = now_rfc3339()
    phase = phase_of(execution, run)
    steps = [
        {
            "name": s.name,
            "uses": s.uses,
            "state": s.state.value,
            "message": (s.error or s.message)[:1024],
            **({"startedAt": _ts(s.started_at)} if s.started_at else {}),
            **({"finishedAt": _ts(s.finished_at)} if s.finished_at else {}),
        }
        for s in (run.steps if run else [])
    ]
    waiting = [s["name"] for s in steps if s["state"] == StepState.WAITING.value and s["uses"] == "core.approval"]
    done = {Phase.SUCCEEDED: "True", Phase.FAILED: "False", Phase.CANCELLED: "False"}.get(phase, "Unknown")
    message = (run.error or "") if run else ""
    new = [
        condition(conds, "Ready", "True", "WorkflowStarted", f"workflow {wf_id}", generation, now),
        condition(conds, "Succeeded", done, phase.value, message, generation, now),
        condition(
            conds,
            "AwaitingApproval",
            "True" if waiting else "False",
            "ApprovalPending" if waiting else "NoApprovalPending",
            ", ".join(waiting),
            generation,
            now,
        ),
    ]
    if refused:
        new.append(
            condition(conds, "ApprovalAccepted", "False", "ApprovalRefused", "; ".join(refused), generation, now)
        )
    elif any(c.get("type") == "ApprovalAccepted" for c in conds):
        new.append(condition(conds, "ApprovalAccepted", "True", "ApprovalRecorded", "", generation, now))
    if edited:
        text = "the spec changed after the run started; the running workflow keeps its original input"
        new.append(condition(conds, "SpecApplied", "False", "SpecChangeIgnored", text, generation, now))
    return {
        "phase": phase.value,
        "observedGeneration": generation,
        "workflowId": wf_id,
        "runId": run_id,
        "specHash": started_from,
        "approvalsSent": approvals_sent,
        "conditions": new,
        "steps": steps,
        "message": message,
    }


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def transitions(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps whose state changed (an Event each)."""
    before = {s["name"]: s.get("state") for s in old}
    return [s for s in new if before.get(s["name"]) != s["state"]]
