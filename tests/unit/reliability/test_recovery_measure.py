"""What the crash campaign counts as recovery (tests/chaos/recovery.py), on hand-made histories."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.api.history.v1 import HistoryEvent

from tests.chaos.recovery import RecoveryFigures, stalls_in

T0 = datetime(2026, 12, 2, 7, 0, 0)


def ev(event_id: int, seconds: float, kind: int) -> HistoryEvent:
    e = HistoryEvent(event_id=event_id, event_type=kind)  # type: ignore[arg-type]
    e.event_time.FromDatetime(T0 + timedelta(seconds=seconds))
    return e


def activity(first_id: int, scheduled: float, started: float, attempt: int, closed: float) -> list[HistoryEvent]:
    s = ev(first_id, scheduled, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    s.activity_task_scheduled_event_attributes.activity_type.name = "core.echo"
    st = ev(first_id + 1, started, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    st.activity_task_started_event_attributes.scheduled_event_id = first_id
    st.activity_task_started_event_attributes.attempt = attempt
    c = ev(first_id + 2, closed, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
    c.activity_task_completed_event_attributes.scheduled_event_id = first_id
    return [s, st, c]


def test_a_retried_activity_waits_from_the_disruption_until_its_next_attempt_starts() -> None:
    at = T0 + timedelta(seconds=5)
    events = activity(1, 1.0, 12.5, 2, 14.0)  # killed at 5 s, attempt 2 started at 12.5 s
    stalls = stalls_in("wf", events, at)
    assert [(s.what, s.seconds) for s in stalls] == [("core.echo (attempt 2)", 7.5)]


def test_work_that_was_not_interrupted_is_no_stall() -> None:
    at = T0 + timedelta(seconds=5)
    events = [
        *activity(1, 1.0, 1.1, 1, 9.0),  # first attempt ran through (on the surviving worker)
        *activity(4, 6.0, 6.1, 2, 7.0),  # scheduled after the disruption: new work, not interrupted
        *activity(7, 0.5, 0.6, 2, 2.0),  # retried, but closed before the disruption
    ]
    assert stalls_in("wf", events, at) == []


def test_a_workflow_task_that_timed_out_after_the_disruption_waits_until_the_next_one_starts() -> None:
    at = T0 + timedelta(seconds=5)
    timed_out = ev(1, 8.0, EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT)
    timed_out.workflow_task_timed_out_event_attributes.timeout_type = TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START
    events = [
        ev(0, 4.0, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED),
        timed_out,
        ev(2, 8.2, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED),
        ev(3, 8.5, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED),
    ]
    stalls = stalls_in("wf", events, at)
    assert [(s.what, s.seconds) for s in stalls] == [("workflow task (schedule_to_start timeout)", 3.5)]


def test_figures_keep_median_and_max_per_kind_and_count_idle_disruptions() -> None:
    figures = RecoveryFigures()
    for value in (0.2, 0.4, 1.0):
        figures.add("SIGTERM", value)
    figures.add("SIGTERM", None)
    assert figures.max("SIGTERM") == 1.0
    text = figures.summary(9.5)
    assert "median 0.4s max 1.0s over 3 disruptions" in text and "+1 that interrupted nothing" in text
    assert "clean run 9.5s" in text
