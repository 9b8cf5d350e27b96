"""Durations as people write them in YAML: `30s`, `10m`, `1h30m`, `2d`, or a number of seconds."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

from definitions.limits import MAX_DURATION, check_duration

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> Any:
    """Accept `1h30m`-style strings and plain seconds; leave timedelta and ISO 8601 to pydantic.

    Values beyond :data:`MAX_DURATION` (``"99999999999d"``, ``1e308`` from JSON) are rejected with
    the limit before they reach ``timedelta``, which would raise OverflowError (not a ValueError, so
    pydantic would not turn it into a validation error and the workflow task would fail forever).
    """
    if isinstance(value, bool):
        raise ValueError("a duration must be like '30s', '10m', '1h30m' or a number of seconds")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value!r} is not a duration; give a finite number of seconds")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _seconds(value, value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("P"):
            return text  # ISO 8601, as the pydantic converter writes timedelta
        pos, total = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f"{value!r} is not a duration; write e.g. '30s', '10m', '1h30m', '2d'")
        return _seconds(total, value)
    return value


def _seconds(seconds: float, given: Any) -> timedelta:
    if not math.isfinite(seconds) or seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{str(given)[:40]!r} is longer than the limit of {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds and seconds == int(seconds):
        out, rest = "", int(seconds)
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            if rest >= size:
                out += f"{rest // size}{unit}"
                rest %= size
        return out
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(check_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
