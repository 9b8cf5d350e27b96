"""Gardener's hibernation schedules, simulated (the controller-manager's shoot hibernation controller).

``spec.hibernation.schedules: [{start: "00 20 * * 1-5", end: "00 06 * * 1-5", location: "Europe/Berlin"}]``:
at a ``start`` time the controller sets ``spec.hibernation.enabled: true``, at an ``end`` time
``false`` (each cron in its ``location``, UTC by default); the gardenlet then reconciles and writes
``status.hibernated``. This controller looks every ``interval`` seconds at the minutes that passed
since it last looked; a schedule it sees for the first time is checked against the current minute,
so a test can make a schedule fire now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from landscape.gardener.kinds import CORE
from landscape.kubeapi.errors import ApiError
from landscape.kubeapi.store import Store

log = logging.getLogger(__name__)
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


class CronError(ValueError):
    pass


def _field(text: str, lo: int, hi: int) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_s = part.partition("/")
        step = int(step_s) if step_s else 1
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            a_s, b_s = rng.split("-", 1)
            a, b = int(a_s), int(b_s)
        else:
            a = b = int(rng)
        if not (lo <= a <= hi and lo <= b <= hi) or step < 1:
            raise CronError(f"{part!r} is outside {lo}-{hi}")
        out.update(range(a, b + 1, step))
    return out


@dataclass(frozen=True)
class Cron:
    """A standard five-field cron expression (minute hour day-of-month month day-of-week)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"cron {text!r} must have five fields")
        try:
            sets = [_field(p, lo, hi) for p, (lo, hi) in zip(parts, _RANGES, strict=True)]
        except ValueError as exc:
            raise CronError(f"cron {text!r}: {exc}") from None
        weekdays = {d % 7 for d in sets[4]}
        return cls(
            minutes=frozenset(sets[0]),
            hours=frozenset(sets[1]),
            days=frozenset(sets[2]),
            months=frozenset(sets[3]),
            weekdays=frozenset(weekdays),
            any_day=parts[2] == "*",
            any_weekday=parts[4] == "*",
        )

    def matches(self, t: datetime) -> bool:
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        day_ok, wd_ok = t.day in self.days, (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and wd_ok
        return day_ok or wd_ok


def desired_in(schedules: list[dict[str, Any]], start: datetime, end: datetime) -> bool | None:
    """What the schedules ask for in the minutes (start, end]: True hibernate, False wake, None nothing.
    The latest boundary wins."""
    wanted: tuple[datetime, bool] | None = None
    for sch in schedules:
        try:
            tz = ZoneInfo(sch.get("location") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            continue
        crons = []
        for key, value in (("start", True), ("end", False)):
            if sch.get(key):
                with contextlib.suppress(CronError):
                    crons.append((Cron.parse(str(sch[key])), value))
        t = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while t <= end:
            local = t.astimezone(tz)
            for cron, value in crons:
                if cron.matches(local) and (wanted is None or t >= wanted[0]):
                    wanted = (t, value)
            t += timedelta(minutes=1)
    return None if wanted is None else wanted[1]


@dataclass
class HibernationScheduler:
    store: Store
    interval: float = 1.0
    seen: dict[str, tuple[str, datetime]] = field(default_factory=dict)

    def tick(self, now: datetime | None = None) -> list[str]:
        """One pass; returns the shoots whose ``spec.hibernation.enabled`` it changed."""
        now = now or datetime.now(UTC)
        kind = self.store.registry.get(CORE, "v1beta1", "shoots")
        if kind is None:
            return []
        changed = []
        for obj in list(self.store.iter(kind)):
            if obj["metadata"].get("deletionTimestamp"):
                continue
            hib = (obj.get("spec") or {}).get("hibernation") or {}
            schedules = hib.get("schedules") or []
            key = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
            if not schedules:
                self.seen.pop(key, None)
                continue
            signature = repr(schedules)
            prev = self.seen.get(key)
            since = prev[1] if prev and prev[0] == signature else now - timedelta(minutes=1)
            self.seen[key] = (signature, now)
            want = desired_in(schedules, since, now)
            if want is None or bool(hib.get("enabled")) == want:
                continue
            ns, name = obj["metadata"].get("namespace"), obj["metadata"]["name"]
            try:
                fresh = self.store.get(kind, ns, name)
                fresh["spec"].setdefault("hibernation", {})["enabled"] = want
                self.store.update(kind, ns, name, fresh, manager="gardener-controller-manager")
                changed.append(key)
                log.info("%s: hibernation schedule -> enabled=%s", key, want)
            except ApiError as exc:
                log.warning("%s: hibernation schedule could not be applied: %s", key, exc)
        return changed

    async def run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # a controller keeps going
                log.exception("hibernation schedule pass failed")
            await asyncio.sleep(self.interval)
