"""Make Temporal's Schedules match a schedule file (`apeiro schedule apply`).

Each entry becomes a Schedule whose action starts ``PipelineWorkflow`` with
``{"pipeline": <name>, "inputs": {...}}`` on the pipeline queue; the workers resolve the name in
their library at each run, so editing the pipeline file needs no re-apply. Pipeline and inputs are
validated when applying, so a schedule never fires into a definition error.

Change detection: the action's memo carries a hash of the entry; equal hash, nothing to do.
Deletion: only schedules whose memo carries the ``apeiro.managed-by`` marker and are absent from the
file; schedules made by hand or by other tools are never touched.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from definitions import queues
from definitions.catalog import load_catalog
from definitions.library import PipelineLibrary
from definitions.runs import PipelineRequest
from definitions.schedules import (
    HASH_KEY,
    MANAGED_KEY,
    MANAGED_VALUE,
    Calendar,
    ScheduleEntry,
    ScheduleSet,
    parse_ranges,
)
from definitions.validate import DefinitionError, Problem, validate_definition
from triggers.schedule_specs import spec_problems

OVERLAP = {
    "skip": ScheduleOverlapPolicy.SKIP,
    "buffer-one": ScheduleOverlapPolicy.BUFFER_ONE,
    "buffer-all": ScheduleOverlapPolicy.BUFFER_ALL,
    "cancel-other": ScheduleOverlapPolicy.CANCEL_OTHER,
    "terminate-other": ScheduleOverlapPolicy.TERMINATE_OTHER,
    "allow-all": ScheduleOverlapPolicy.ALLOW_ALL,
}
_FIELD_MAX = {"second": 59, "minute": 59, "hour": 23, "day_of_month": 31, "month": 12, "day_of_week": 6, "year": 9999}
_FIELD_MIN = {"day_of_month": 1, "month": 1}


def entry_hash(entry: ScheduleEntry) -> str:
    text = json.dumps(entry.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _ranges(name: str, text: str) -> list[ScheduleRange]:
    out = []
    for start, end, step in parse_ranges(text):
        if end == -1:
            start, end = max(start, _FIELD_MIN.get(name, 0)), _FIELD_MAX[name]
        out.append(ScheduleRange(start, end, step))
    if not out and name != "year":
        out = [ScheduleRange(_FIELD_MIN.get(name, 0), _FIELD_MAX[name])]
    return out


def calendar_spec(cal: Calendar) -> ScheduleCalendarSpec:
    return ScheduleCalendarSpec(
        second=_ranges("second", cal.second),
        minute=_ranges("minute", cal.minute),
        hour=_ranges("hour", cal.hour),
        day_of_month=_ranges("day_of_month", cal.day_of_month),
        month=_ranges("month", cal.month),
        day_of_week=_ranges("day_of_week", cal.day_of_week),
        year=_ranges("year", cal.year),
        comment=cal.comment or None,
    )


def validate_entries(schedules: ScheduleSet, library: PipelineLibrary | None = None) -> list[Problem]:
    """Every entry's spec is one the server accepts (``triggers.schedule_specs``), its pipeline exists
    and its inputs validate (the same checks `apeiro run` makes)."""
    library = library or PipelineLibrary()
    names = library.names()
    problems: list[Problem] = []
    for i, entry in enumerate(schedules.schedules):
        at = f"schedules[{i}] ({entry.id})"
        problems.extend(Problem(f"{at}.{path}", message) for path, message in spec_problems(entry))
        if entry.pipeline not in names:
            problems.append(Problem(at, f"no pipeline named {entry.pipeline!r}; known: {', '.join(names)}"))
            continue
        try:
            validate_definition(
                library.load(entry.pipeline),
                load_catalog(),
                inputs=entry.inputs,
                known_pipelines=names,
                source=entry.pipeline,
            )
        except DefinitionError as exc:
            problems.extend(Problem(f"{at}.inputs", str(p)) for p in exc.problems)
    return problems


def build_schedule(entry: ScheduleEntry) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "PipelineWorkflow",
            PipelineRequest(pipeline=entry.pipeline, inputs=entry.inputs, requested_by=f"schedule:{entry.id}"),
            id=f"{entry.id}",  # Temporal appends the scheduled time
            task_queue=queues.PIPELINE,
            execution_timeout=entry.execution_timeout,
            memo={HASH_KEY: entry_hash(entry)},
        ),
        spec=ScheduleSpec(
            cron_expressions=list(entry.cron),
            calendars=[calendar_spec(c) for c in entry.calendars],
            intervals=[ScheduleIntervalSpec(every=e) for e in entry.every],
            time_zone_name=entry.timezone,
            jitter=entry.jitter or None,
        ),
        policy=SchedulePolicy(
            overlap=OVERLAP[entry.overlap], catchup_window=entry.catchup_window, pause_on_failure=entry.pause_on_failure
        ),
        state=ScheduleState(
            paused=entry.paused,
            note=entry.note or ("paused in the schedule file" if entry.paused else "managed by apeiro schedule apply"),
        ),
    )


@dataclass
class Existing:
    id: str
    managed: bool
    hash: str = ""
    paused: bool = False


@dataclass
class Plan:
    create: list[ScheduleEntry] = field(default_factory=list)
    update: list[ScheduleEntry] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # exist, not in the file, not ours: left alone

    def lines(self) -> list[str]:
        out = [f"+ create {e.id} ({e.pipeline})" for e in self.create]
        out += [f"~ update {e.id} ({e.pipeline})" for e in self.update]
        out += [f"- delete {i}" for i in self.delete]
        out += [f"= unchanged {i}" for i in self.unchanged]
        out += [f"  ignore {i} (not created by apeiro schedule apply)" for i in self.foreign]
        return out


async def _decode(client: Client, value: Any) -> Any:
    # Through the whole converter, codec included: with payload encryption on, the action's memo
    # comes back encrypted, and the payload converter alone cannot read it.
    if isinstance(value, Payload):
        return (await client.data_converter.decode([value]))[0]
    return value


async def describe_existing(client: Client, schedule_id: str) -> Existing | None:
    try:
        desc = await client.get_schedule_handle(schedule_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    memo = await desc.memo()
    action = desc.schedule.action
    action_memo = getattr(action, "memo", None) or {}
    return Existing(
        id=schedule_id,
        managed=memo.get(MANAGED_KEY) == MANAGED_VALUE,
        hash=str(await _decode(client, action_memo.get(HASH_KEY, "")) or ""),
        paused=desc.schedule.state.paused,
    )


async def list_ids(client: Client) -> list[str]:
    ids = []
    async for item in await client.list_schedules():
        ids.append(item.id)
    return ids


async def plan_apply(client: Client, schedules: ScheduleSet, *, prune: bool = True) -> Plan:
    """What to change. ``prune=False`` never deletes (for applying a single entry, as the demo does)."""
    plan = Plan()
    wanted = {e.id: e for e in schedules.schedules}
    for entry in schedules.schedules:
        existing = await describe_existing(client, entry.id)
        if existing is None:
            plan.create.append(entry)
        elif existing.hash == entry_hash(entry):
            plan.unchanged.append(entry.id)
        else:
            plan.update.append(entry)
    for sid in await list_ids(client) if prune else []:
        if sid in wanted:
            continue
        existing = await describe_existing(client, sid)
        if existing is None:
            continue
        (plan.delete if existing.managed else plan.foreign).append(sid)
    return plan


async def apply_plan(client: Client, plan: Plan) -> None:
    for entry in plan.create:
        try:
            await client.create_schedule(entry.id, build_schedule(entry), memo={MANAGED_KEY: MANAGED_VALUE})
        except ScheduleAlreadyRunningError:
            plan.update.append(entry)  # created meanwhile: bring it in line below
    for entry in plan.update:
        schedule = build_schedule(entry)

        def updater(_: ScheduleUpdateInput, schedule: Schedule = schedule) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(entry.id).update(updater)
    for sid in plan.delete:
        try:
            await client.get_schedule_handle(sid).delete()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
