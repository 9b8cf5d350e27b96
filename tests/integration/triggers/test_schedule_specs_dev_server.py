"""`apeiro schedule apply --dry-run` judges cron lines, calendars and intervals as the server does:
for each spec, the local check and the dev server's answer to create_schedule agree."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleRange,
    ScheduleSpec,
)

from definitions.schedules import ScheduleEntry
from triggers.schedule_specs import check_cron, spec_problems

pytestmark = [pytest.mark.integration]

CRONS = [
    "30 2 * * *",
    "0 0 1 1 * 2027",
    "0 30 2 * * * 2027",
    "0 30 2 * * *",
    "99 99 * * *",
    "0 3 * * 7",
    "0 3 * * SUN",
    "0 3 ? * *",
    "0 24 * * *",
    "0 3 32 * *",
    "0 3 * 13 *",
    "@daily",
    "@every 1h",
    "0 3 * * 8",
    "CRON_TZ=Europe/Berlin 0 3 * * *",
    "0 3 0 * *",
    "* * * * * * * *",
    "0 3 * * MON-FRI",
    "*/15 * * * *",
]


async def _server_accepts(client: Client, spec: ScheduleSpec) -> bool:
    sid = f"spec-check-{uuid.uuid4().hex[:8]}"
    try:
        handle = await client.create_schedule(
            sid, Schedule(action=ScheduleActionStartWorkflow("X", id=sid, task_queue="spec-check"), spec=spec)
        )
    except Exception as exc:
        assert "Invalid schedule spec" in str(exc) or "does not have" in str(exc), exc
        return False
    await handle.delete()
    return True


@pytest.mark.parametrize("cron", CRONS)
async def test_cron_lines_are_judged_as_the_server_does(dev_client: Client, cron: str) -> None:
    try:
        check_cron(cron)
        mine = True
    except ValueError:
        mine = False
    assert mine == await _server_accepts(dev_client, ScheduleSpec(cron_expressions=[cron])), cron


@pytest.mark.parametrize(("hour", "every"), [("25", None), ("3", None), (None, 0.0), (None, 0.5), (None, 1.0)])
async def test_calendars_and_intervals_are_judged_as_the_server_does(
    dev_client: Client, hour: str | None, every: float | None
) -> None:
    entry = ScheduleEntry.model_validate(
        {
            "id": "x",
            "pipeline": "p",
            **({"calendars": [{"hour": hour}]} if hour else {}),
            **({"every": [f"{every}s"]} if every is not None else {}),
        }
    )
    if hour is not None:
        spec = ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(int(hour))])])
    else:
        spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every or 0))])
    assert (not spec_problems(entry)) == await _server_accepts(dev_client, spec), (hour, every)
