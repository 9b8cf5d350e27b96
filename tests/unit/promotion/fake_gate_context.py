"""A GateContext without Temporal: a fake clock that jumps to the next event, scripted activities.

``sleep`` and ``wait`` move the clock; events scheduled with :meth:`FakeGateContext.at` (a vote, a
test result, a calendar change) fire when the clock passes them. A wait with nothing left to happen
and no timeout would block forever in a workflow; here it fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from definitions.promotion_runs import GateProgress, GateStatus, TestResult

START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@dataclass
class FakeGateContext:
    status: GateStatus
    pipeline: str = "app"
    version: str = "1.2.0"
    ring: str = "canary"
    workflow_id: str = "promotion-app-1.2.0"
    clock: datetime = START
    #: activity name -> function of the argument (may raise); every call is recorded in ``calls``.
    activities: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    calls: list[tuple[datetime, str, Any]] = field(default_factory=list)
    calendars: dict[str, Any] = field(default_factory=dict)
    generation: int = 0
    result: TestResult | None = None
    verified: dict[str, datetime] = field(default_factory=dict)
    events: list[tuple[datetime, Callable[[], None]]] = field(default_factory=list)
    progress: GateProgress = field(default_factory=lambda: GateProgress(ring="canary", gate="gate"))

    def at(self, when: timedelta, event: Callable[[], None]) -> None:
        """Run ``event`` once the clock reaches START + ``when``."""
        self.events.append((START + when, event))
        self.events.sort(key=lambda e: e[0])

    def _advance(self, until: datetime) -> None:
        while self.events and self.events[0][0] <= until:
            when, event = self.events.pop(0)
            self.clock = max(self.clock, when)
            event()
        self.clock = max(self.clock, until)

    def now(self) -> datetime:
        return self.clock

    async def sleep(self, duration: timedelta) -> None:
        self._advance(self.clock + duration)

    async def wait(self, condition: Callable[[], bool], timeout: timedelta | None = None) -> bool:
        deadline = None if timeout is None else self.clock + timeout
        while not condition():
            if self.events and (deadline is None or self.events[0][0] <= deadline):
                self._advance(self.events[0][0])
                continue
            if deadline is None:
                raise AssertionError("the evaluator waits for something that never happens")
            self._advance(deadline)
            return condition()
        return True

    async def activity(self, name: str, arg: Any, **options: Any) -> Any:
        self.calls.append((self.clock, name, arg))
        return self.activities[name](arg)

    def calendar(self, name: str) -> Any:
        return self.calendars[name]

    def calendar_generation(self) -> int:
        return self.generation

    def test_result(self) -> TestResult | None:
        return self.result

    def set_test_result(self, result: TestResult | None) -> None:
        self.result = result

    def verified_at(self, ring: str) -> datetime | None:
        return self.verified.get(ring)
