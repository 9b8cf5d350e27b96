"""Operator repair of a running pipeline and its progress for the Temporal UI (pure, sandbox-safe).

PipelineWorkflow keeps its scheduler; this module holds the rules around it so they can be read
(and tested) on their own:

- :func:`refuse_retry`, :func:`refuse_skip`, :func:`refuse_pause`, :func:`refuse_resume`: the
  update validators' reasons. A refused action changes nothing.
- :func:`reopen_dependants`: after a retry or skip, dependants that were cancelled because of the
  step go back to pending, so the scheduler runs them.
- :func:`details_markdown`: the Markdown table ``workflow.set_current_details`` shows on the
  Temporal UI's run page (steps and states; no payloads).

Every new behaviour is behind the ``workflow.patched`` id :data:`PATCH_REPAIR`, so histories of
runs started before it replay unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from definitions.pipeline import Pipeline
from definitions.runs import RepairRequest, RunState, StepRecord, StepState

PATCH_REPAIR = "i14-operator-repair"

#: The message on dependants cancelled because a step they need did not succeed (see _schedule).
BLOCKED_PREFIX = "not run: needed step(s)"

STATE_ICON = {
    StepState.PENDING: "⏳",
    StepState.RUNNING: "▶️",
    StepState.WAITING: "⏸️",
    StepState.SUCCEEDED: "✅",
    StepState.FAILED: "❌",
    StepState.SKIPPED: "⏭️",
    StepState.CANCELLED: "⛔",
}


def _common(run_state: RunState, enabled: bool, req: RepairRequest, need_reason: bool) -> None:
    if not enabled:
        raise ValueError("this run started before operator repairs existed; re-run it to repair")
    if run_state is not RunState.RUNNING:
        raise ValueError(f"the run has ended ({run_state.value}); nothing to change")
    if need_reason and not req.reason.strip():
        raise ValueError("a reason is required (it is recorded with who acted and when)")


def _record(records: Mapping[str, StepRecord], req: RepairRequest) -> StepRecord:
    if not req.step:
        raise ValueError("name the step (--step)")
    rec = records.get(req.step)
    if rec is None:
        raise ValueError(f"no step named {req.step!r}; steps: {', '.join(records)}")
    return rec


def refuse_retry(records: Mapping[str, StepRecord], req: RepairRequest, run_state: RunState, enabled: bool) -> None:
    _common(run_state, enabled, req, need_reason=True)
    rec = _record(records, req)
    if rec.state is not StepState.FAILED:
        raise ValueError(f"step {rec.name!r} is {rec.state.value}, not failed: only a failed step can be retried")


def refuse_skip(
    records: Mapping[str, StepRecord], req: RepairRequest, run_state: RunState, enabled: bool, in_flight: Iterable[str]
) -> None:
    _common(run_state, enabled, req, need_reason=True)
    rec = _record(records, req)
    if rec.name in set(in_flight) or rec.state not in (StepState.PENDING, StepState.FAILED):
        raise ValueError(
            f"step {rec.name!r} is {rec.state.value}: only a pending (not started) or failed step can be skipped"
        )


def refuse_pause(paused: bool, req: RepairRequest, run_state: RunState, enabled: bool) -> None:
    _common(run_state, enabled, req, need_reason=True)
    if paused:
        raise ValueError("the run is already paused")


def refuse_resume(paused: bool, req: RepairRequest, run_state: RunState, enabled: bool) -> None:
    _common(run_state, enabled, req, need_reason=False)
    if not paused:
        raise ValueError("the run is not paused")


def reopen_dependants(pipeline: Pipeline, records: Mapping[str, StepRecord], step: str) -> list[str]:
    """Put dependants cancelled because of `step` (transitively) back to pending; their names."""
    reopened: list[str] = []
    frontier = [step]
    while frontier:
        current = frontier.pop()
        for s in pipeline.spec.steps:
            rec = records[s.name]
            if current in s.needs and rec.state is StepState.CANCELLED and rec.message.startswith(BLOCKED_PREFIX):
                rec.state, rec.message, rec.finished_at, rec.error = StepState.PENDING, "", None, None
                reopened.append(s.name)
                frontier.append(s.name)
    return reopened


def waits_for_operator(pipeline: Pipeline, records: Mapping[str, StepRecord]) -> list[str]:
    """Failed steps with ``onFailure: pause`` (not continueOnError): the run waits on them."""
    return [
        s.name
        for s in pipeline.spec.steps
        if s.on_failure == "pause" and records[s.name].state is StepState.FAILED and not records[s.name].ignored_failure
    ]


def _cell(text: str, limit: int = 80) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def details_markdown(
    pipeline: str, records: Iterable[StepRecord], in_flight: Iterable[str], paused: bool, waiting_on: Iterable[str]
) -> str:
    """The run's progress as Markdown for the Temporal UI (names, states, counts; never payloads)."""
    started = set(in_flight)
    rows = ["| step | uses | state | detail |", "| --- | --- | --- | --- |"]
    counts: dict[str, int] = {}
    for rec in records:
        state = rec.state
        shown = state.value if not (state is StepState.PENDING and rec.name in started) else "starting"
        counts[shown] = counts.get(shown, 0) + 1
        detail = rec.error or rec.message
        if rec.items_total is not None:
            detail = (
                f"{rec.items_done}/{rec.items_total} items"
                + (f", {rec.items_failed} failed" if rec.items_failed else "")
                + (f"; {detail}" if detail else "")
            )
        if rec.repairs:
            last = rec.repairs[-1]
            detail = f"{last.action} by {last.by}: {last.reason}" + (f"; {detail}" if detail else "")
        rows.append(f"| {_cell(rec.name)} | `{_cell(rec.uses)}` | {STATE_ICON[state]} {shown} | {_cell(detail)} |")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    head = [f"**{_cell(pipeline)}**: {summary}"]
    if paused:
        head.append("⏸️ **paused by an operator**: no new steps start (`apeiro resume`)")
    waiting = list(waiting_on)
    if waiting:
        head.append(f"⚠️ **waiting for an operator**: {', '.join(waiting)} failed (`apeiro retry` or `apeiro skip`)")
    return "\n\n".join(head) + "\n\n" + "\n".join(rows)


def step_summary(step: str, uses: str, index: int | None = None) -> str:
    """The static summary of an activity or child started for a step (shown in the UI's timeline)."""
    return f"{step}[{index}] · {uses}" if index is not None else f"{step} · {uses}"
