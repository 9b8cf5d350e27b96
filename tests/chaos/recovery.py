"""Recovery time of a disruption, read from the workflow histories of the disrupted run.

"Progress again" is defined on what the histories record (server clock, same machine as the
campaign's clock):

- an **activity** was interrupted when its final attempt started *after* the disruption although
  the activity was scheduled *before* it and closed after it, with attempt > 1: the attempt in flight
  on the killed/stopped worker was abandoned (kill -9: its heartbeat or start-to-close timeout ran
  out; SIGTERM: it was handed off) and another worker started the next one. Progress = that
  attempt's start (Temporal writes ActivityTaskStarted when the attempt ends, stamped with the
  attempt's real start time). If that attempt failed again the figure includes the extra retries
  (conservative).
- a **workflow task** was interrupted when it timed out after the disruption (sticky queue of a dead
  worker: schedule-to-start 5 s; or started on it: start-to-close). Progress = the next
  WorkflowTaskStarted.

Recovery of a disruption = the longest of these waits, measured from the disruption; ``None`` when
nothing in flight was interrupted (the killed worker was idle, or the short activity it ran was
allowed to finish). Kept apart from the campaigns so they can share it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType, PendingActivityState, TimeoutType
from temporalio.client import Client

ACTIVITY_CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}


@dataclass
class Stall:
    workflow_id: str
    what: str
    seconds: float


@dataclass
class Recovery:
    """The interrupted work of one disruption and how long it waited."""

    stalls: list[Stall] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        return max((s.seconds for s in self.stalls), default=None)

    def describe(self) -> str:
        return "; ".join(f"{s.what} {s.seconds:.1f}s" for s in sorted(self.stalls, key=lambda s: -s.seconds)[:3])


def run_workflow_ids(workflow_id: str, result: Any) -> list[str]:
    """The pipeline and the child workflows its steps ran (from the pipeline's result)."""
    ids = [workflow_id]
    if isinstance(result, dict):
        for step in result.get("steps", []):
            ids += list(step.get("child_workflow_ids") or step.get("childWorkflowIds") or [])
            if step.get("name"):
                ids.append(f"{workflow_id}/{step['name']}")  # a step run as a child workflow
    return list(dict.fromkeys(ids))


def _time(event: Any) -> datetime:
    return event.event_time.ToDatetime().replace(tzinfo=None)


def stalls_in(workflow_id: str, events: Sequence[Any], at: datetime) -> list[Stall]:
    """The interrupted work in one history; ``at`` is the disruption, naive UTC."""
    out: list[Stall] = []
    scheduled: dict[int, tuple[datetime, str]] = {}
    started: dict[int, tuple[datetime, int]] = {}
    closed: dict[int, datetime] = {}
    wft_timed_out: list[tuple[datetime, str]] = []
    wft_started: list[datetime] = []
    for ev in events:
        t = _time(ev)
        if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = ev.activity_task_scheduled_event_attributes
            scheduled[ev.event_id] = (t, attrs.activity_type.name)
        elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = ev.activity_task_started_event_attributes
            started[attrs.scheduled_event_id] = (t, attrs.attempt)
        elif ev.event_type in ACTIVITY_CLOSED:
            attrs = getattr(ev, ACTIVITY_CLOSED[ev.event_type])
            closed[attrs.scheduled_event_id] = t
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            kind = TimeoutType.Name(ev.workflow_task_timed_out_event_attributes.timeout_type)
            wft_timed_out.append((t, kind.removeprefix("TIMEOUT_TYPE_").lower()))
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            wft_started.append(t)
    for sid, (t_sched, name) in scheduled.items():
        if sid not in started or sid not in closed:
            continue
        t_start, attempt = started[sid]
        if attempt > 1 and t_sched < at < closed[sid] and t_start > at:
            out.append(Stall(workflow_id, f"{name} (attempt {attempt})", (t_start - at).total_seconds()))
    for t, kind in wft_timed_out:
        if t <= at:
            continue
        nxt = next((s for s in wft_started if s > t), None)
        if nxt is not None:
            out.append(Stall(workflow_id, f"workflow task ({kind} timeout)", (nxt - at).total_seconds()))
    return out


async def retried_in(client: Client, ids: Iterable[str]) -> int:
    """Activities of these workflows that needed more than one attempt: evidence that a disruption
    really interrupted work in flight, not an idle worker."""
    retried = 0
    for wid in ids:
        try:
            history = await client.get_workflow_handle(wid).fetch_history()
        except Exception:
            continue
        for event in history.events:
            if (
                event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                and event.activity_task_started_event_attributes.attempt > 1
            ):
                retried += 1
    return retried


async def recovery_after(client: Client, workflow_ids: Iterable[str], at: datetime) -> Recovery:
    """Read each history and collect the interrupted work; ``at`` is the disruption (aware or naive UTC)."""
    at_naive = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
    rec = Recovery()
    for wid in workflow_ids:
        try:
            history = await client.get_workflow_handle(wid).fetch_history()
        except Exception:
            continue  # a step that never started its child
        rec.stalls += stalls_in(wid, list(history.events), at_naive)
    return rec


async def recovery_figures(client: Client, workflow_ids: Iterable[str], at: datetime) -> tuple[float | None, str]:
    """A run record's two recovery fields: seconds until the interrupted work ran again (None:
    nothing was interrupted) and what it was."""
    rec = await recovery_after(client, workflow_ids, at)
    return (None if rec.seconds is None else round(rec.seconds, 2)), rec.describe()


@dataclass
class RecoveryFigures:
    """Median and max per disruption kind, for the campaign summaries."""

    by_kind: dict[str, list[float]] = field(default_factory=dict)
    nothing_in_flight: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, seconds: float | None) -> None:
        self.by_kind.setdefault(kind, [])
        self.nothing_in_flight.setdefault(kind, 0)
        if seconds is None:
            self.nothing_in_flight[kind] += 1
        else:
            self.by_kind[kind].append(seconds)

    def max(self, kind: str) -> float | None:
        values = self.by_kind.get(kind) or []
        return max(values) if values else None

    def summary(self, baseline_seconds: float) -> str:
        lines = []
        for kind, values in self.by_kind.items():
            idle = self.nothing_in_flight.get(kind, 0)
            if values:
                lines.append(
                    f"recovery after {kind}: median {statistics.median(values):.1f}s max {max(values):.1f}s "
                    f"over {len(values)} disruptions that interrupted work in flight (+{idle} that interrupted "
                    f"nothing); clean run {baseline_seconds:.1f}s"
                )
            else:
                lines.append(f"recovery after {kind}: no disruption interrupted work in flight ({idle} runs)")
        return "\n".join(lines)


async def busy_worker_pids(client: Client, workflow_id: str, depth: int = 3) -> set[int]:
    """Pids of the workers running an activity of this run right now (its own or its children's).

    A campaign disrupts one of them when there is one, so that most disruptions interrupt work in
    flight and yield a recovery figure (an idle worker's death costs nothing to measure). Identities
    are the SDK default ``pid@host``.
    """
    pids: set[int] = set()
    try:
        desc = (await client.get_workflow_handle(workflow_id).describe()).raw_description
    except Exception:
        return pids
    for act in desc.pending_activities:
        head = act.last_worker_identity.split("@", 1)[0]
        if act.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED and head.isdigit():
            pids.add(int(head))
    if depth > 0:
        for child in desc.pending_children:
            pids |= await busy_worker_pids(client, child.workflow_id, depth - 1)
    return pids
