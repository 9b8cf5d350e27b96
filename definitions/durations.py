"""Durations as people write them in YAML: `30s`, `10m`, `1h30m`, `2d`, or a number of seconds."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> Any:
    """Accept `1h30m`-style strings and plain seconds; leave timedelta and ISO 8601 to pydantic."""
    if isinstance(value, bool):
        raise ValueError("a duration must be like '30s', '10m', '1h30m' or a number of seconds")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
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
        return timedelta(seconds=total)
    return value


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
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
