"""The checks Temporal's schedule spec compiler makes, made before anything is sent.

`apeiro schedule apply --dry-run` used to show "+ create" for specs the server then refused
(``99 99 * * *``, ``hour: 25``, ``every: 0s``). These checks follow the server's rules: cron lines of
5 fields (minute hour day-of-month month day-of-week), 6 (plus year) or 7 (second first, year
last), or a predefined ``@daily``-style word; calendar fields within their ranges; intervals longer
than zero.
"""

from __future__ import annotations

import re
from datetime import timedelta

from definitions.schedules import Calendar, ScheduleEntry, parse_ranges

FIELD_RANGE = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day_of_month": (1, 31),
    "month": (1, 12),
    "day_of_week": (0, 7),  # cron also writes Sunday as 7
    "year": (1970, 9999),
}
CRON_LAYOUT = {
    5: ("minute", "hour", "day_of_month", "month", "day_of_week"),
    6: ("minute", "hour", "day_of_month", "month", "day_of_week", "year"),
    7: ("second", "minute", "hour", "day_of_month", "month", "day_of_week", "year"),
}
#: The server refuses shorter intervals ("interval is too small").
MIN_INTERVAL = timedelta(seconds=1)
PREDEFINED = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
NAMES = {
    "month": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    "day_of_week": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
_ITEM = re.compile(r"^(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?$")


def _value(field: str, token: str) -> int:
    names = NAMES.get(field, [])
    if token in names:
        return names.index(token) + (1 if field == "month" else 0)
    if not token.isdigit():
        raise ValueError(f"{token!r} is not a number{' or a name' if names else ''}")
    return int(token)


def check_cron_field(field: str, text: str) -> None:
    """Raise ValueError naming the field and its range unless ``text`` is a valid cron field."""
    low, high = FIELD_RANGE[field]
    text = text.strip().lower()
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"{field} {text!r}: use '*', a number, 'a-b', 'a-b/step' or a comma list")
        rng, step = match.group(1), match.group(2)
        if step is not None and int(step) < 1:
            raise ValueError(f"{field} {text!r}: a step is at least 1")
        if rng == "*":
            continue
        start_text, _, end_text = rng.partition("-")
        try:
            start = _value(field, start_text)
            end = _value(field, end_text) if end_text else start
        except ValueError as exc:
            raise ValueError(f"{field} {text!r}: {exc}") from None
        for v in (start, end):
            if not low <= v <= high:
                raise ValueError(f"{field} {text!r}: {v} is outside {low}-{high}")
        if end < start:
            raise ValueError(f"{field} {text!r}: ranges go upwards")


def check_cron(line: str) -> None:
    text = line.strip()
    if text.upper().startswith(("CRON_TZ=", "TZ=")):
        text = text.split(None, 1)[1] if " " in text else ""
    if text.startswith("@"):
        word = text.split()[0].lower()
        if word == "@every":
            return  # "@every 1h": the server parses the duration
        if word not in PREDEFINED:
            raise ValueError(f"cron {line!r}: unknown {word}; use one of {', '.join(sorted(PREDEFINED))}")
        return
    fields = text.split()
    layout = CRON_LAYOUT.get(len(fields))
    if layout is None:
        raise ValueError(
            f"cron {line!r} has {len(fields)} fields; use 5 (minute hour day-of-month month day-of-week), "
            "6 (plus year) or 7 (second first, year last)"
        )
    for name, value in zip(layout, fields, strict=True):
        try:
            check_cron_field(name, value)
        except ValueError as exc:
            raise ValueError(f"cron {line!r}: {exc}") from None


def check_calendar(cal: Calendar) -> list[str]:
    problems = []
    for name in FIELD_RANGE:
        text = getattr(cal, name, "") or ""
        if not text.strip() or text.strip() == "*":
            continue
        low, high = FIELD_RANGE[name]
        if name == "day_of_week":
            high = 6  # calendars number Sunday 0 only
        try:
            for start, end, _step in parse_ranges(text):
                for v in (start, end):
                    if v != -1 and not low <= v <= high:
                        problems.append(f"{name} {text!r}: {v} is outside {low}-{high}")
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return problems


def spec_problems(entry: ScheduleEntry) -> list[tuple[str, str]]:
    """(path, message) for each part of the entry's spec the server would refuse."""
    out: list[tuple[str, str]] = []
    for i, line in enumerate(entry.cron):
        try:
            check_cron(line)
        except ValueError as exc:
            out.append((f"cron[{i}]", str(exc)))
    for i, cal in enumerate(entry.calendars):
        out += [(f"calendars[{i}]", p) for p in check_calendar(cal)]
    for i, every in enumerate(entry.every):
        if every < MIN_INTERVAL:
            out.append(
                (f"every[{i}]", f"an interval must be at least {MIN_INTERVAL.total_seconds():g} s (got {every})")
            )
    if entry.jitter < timedelta(0):
        out.append(("jitter", "jitter cannot be negative"))
    return out
