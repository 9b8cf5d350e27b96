"""Maintenance schedules as operators declare them (``definitions/schedules.yaml``).

Each entry starts a pipeline of the library on a calendar: cron expressions and/or calendar specs
and/or fixed intervals, in a time zone, with an overlap policy (what happens when the previous run
is still going), jitter (spread the start so a fleet does not hit a registry at the same second),
a catch-up window and a paused flag. `apeiro schedule apply FILE` makes Temporal's Schedules match
the file; schedules it created carry a memo marker, and only those are ever deleted.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from definitions.durations import Duration
from definitions.validate import DefinitionError, Problem, load_yaml, pydantic_problems

#: Memo key/value on every schedule `apeiro schedule apply` creates: the only ones it may delete.
MANAGED_KEY = "apeiro.managed-by"
MANAGED_VALUE = "apeiro schedule apply"
#: Memo key (on the schedule's workflow action) holding the hash of the entry it was made from.
HASH_KEY = "apeiro.schedule-hash"

Overlap = Literal["skip", "buffer-one", "buffer-all", "cancel-other", "terminate-other", "allow-all"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel)


class Calendar(_Strict):
    """Like a cron line with named fields; each is ``*``, a number, ``a-b``, ``a-b/step`` or a comma list.

    ``day_of_week``: 0 = Sunday ... 6 = Saturday. Unset fields: ``second``/``minute``/``hour`` 0,
    the others ``*``.
    """

    second: str = "0"
    minute: str = "0"
    hour: str = "0"
    day_of_month: str = "*"
    month: str = "*"
    day_of_week: str = "*"
    year: str = "*"
    comment: str = ""

    @field_validator("second", "minute", "hour", "day_of_month", "month", "day_of_week", "year", mode="before")
    @classmethod
    def _as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v

    @field_validator("second", "minute", "hour", "day_of_month", "month", "day_of_week", "year")
    @classmethod
    def _check(cls, v: str) -> str:
        parse_ranges(v)
        return v


def parse_ranges(text: str) -> list[tuple[int, int, int]]:
    """``"1-5,10"`` -> [(1, 5, 1), (10, 10, 1)]; ``"*"`` -> []; ``"*/15"`` -> [(0, 59?, 15)] (end set later)."""
    text = text.strip()
    if text == "*":
        return []
    out = []
    for part in text.split(","):
        part = part.strip()
        rng, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if rng == "*":
                start, end = 0, -1  # -1: up to the field's maximum
            elif "-" in rng:
                a, b = rng.split("-", 1)
                start, end = int(a), int(b)
            else:
                start = end = int(rng)
        except ValueError:
            raise ValueError(f"{text!r}: use '*', a number, 'a-b', 'a-b/step' or a comma list") from None
        if step < 1 or start < 0 or (end != -1 and end < start):
            raise ValueError(f"{text!r}: ranges go upwards and steps are at least 1")
        out.append((start, end, step))
    return out


class ScheduleEntry(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Temporal schedule id")
    description: str = ""
    pipeline: str = Field(description="pipeline of the library the schedule starts")
    inputs: dict[str, Any] = Field(default_factory=dict)
    cron: list[str] = Field(default_factory=list, description="cron lines (5 or 6 fields, or @daily/@weekly...)")
    calendars: list[Calendar] = Field(default_factory=list)
    every: list[Duration] = Field(default_factory=list, description="fixed intervals")
    timezone: str = "UTC"
    overlap: Overlap = "skip"
    jitter: Duration = timedelta(0)
    catchup_window: Duration = Field(default=timedelta(hours=1), description="missed runs older than this are dropped")
    pause_on_failure: bool = False
    paused: bool = False
    note: str = Field(default="", description="why it is paused (shown in the UI)")
    execution_timeout: Duration | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; use an IANA name like Europe/Berlin or UTC") from None
        return v

    @model_validator(mode="after")
    def _has_a_calendar(self) -> ScheduleEntry:
        if not (self.cron or self.calendars or self.every):
            raise ValueError("a schedule needs at least one of 'cron', 'calendars' or 'every'")
        return self


class ScheduleSet(_Strict):
    api_version: str = Field(default="apeiro.dev/v1alpha1", alias="apiVersion")
    kind: Literal["ScheduleSet"] = "ScheduleSet"
    schedules: list[ScheduleEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ScheduleSet:
        ids = [s.id for s in self.schedules]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"schedule ids must be unique; repeated: {', '.join(dup)}")
        return self


def load_schedule_set(path: Path) -> ScheduleSet:
    try:
        text = path.read_text()
    except OSError as exc:
        raise DefinitionError([Problem("", f"cannot read {path}: {exc.strerror}")], str(path)) from None
    data = load_yaml(text, str(path))
    try:
        return ScheduleSet.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(pydantic_problems(exc), str(path)) from None
