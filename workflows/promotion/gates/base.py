"""The one interface every gate evaluator implements, and the door through which it sees the world.

An evaluator decides one gate: it returns a :class:`Decision` (outcome, reason, next check). It never
touches Temporal directly: time, activities and the run's state reach it through a
:class:`GateContext`. The workflow passes a context backed by Temporal (``gates/temporal.py``); a unit
test passes one with a fake clock and scripted activity answers, so each gate's rules are tested
without a server. The driver around the evaluators (timeouts, Error retries with backoff, pauses for
a person, overrides) lives in ``workflows/promotion/gating.py`` and is the same for every gate type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from temporalio.common import RetryPolicy

from definitions.promotion import GateOutcome
from definitions.promotion_runs import GateProgress, GateStatus, Measurement, TestResult

#: Measurements kept per gate (the status query shows them; older ones are dropped).
MAX_MEASUREMENTS = 20
#: Every gate's activity call is short: a query, a probe, a trigger, a calendar lookup.
QUERY_TIMEOUT = timedelta(seconds=15)  # = activity_options.SHORT_CALL: calls that cannot heartbeat are short
#: A measurement is taken once; the gate's own rules (error limits, retries) decide what a failure means.
ONE_ATTEMPT = RetryPolicy(maximum_attempts=1)

R = TypeVar("R")


@dataclass(frozen=True)
class Decision:
    """What an evaluator concluded. ``next_check`` is when it would look again (None once decided)."""

    outcome: GateOutcome
    reason: str
    next_check: datetime | None = None


class GateContext(Protocol):
    """Everything an evaluator may use. ``status`` is the gate's live record (state, reason, next check,
    measurements, votes) that the status query shows; evaluators write their progress there."""

    status: GateStatus
    #: The evaluator's counters and timer, kept so a continued run resumes the check (None of it is
    #: needed when the run never continues as new: an evaluation starts with it empty).
    progress: GateProgress
    pipeline: str
    version: str
    ring: str
    workflow_id: str

    def now(self) -> datetime: ...

    async def sleep(self, duration: timedelta) -> None: ...

    async def wait(self, condition: Callable[[], bool], timeout: timedelta | None = None) -> bool:
        """Until ``condition`` holds (True) or ``timeout`` passes (False)."""
        ...

    async def activity(self, name: str, arg: Any, **options: Any) -> Any:
        """Run activity ``name`` with the given options (result_type, timeouts, retry policy)."""
        ...

    def calendar(self, name: str) -> Any: ...

    def calendar_generation(self) -> int:
        """Bumped by every ``calendar_changed`` signal, so a waiting time window looks again."""
        ...

    def test_result(self) -> TestResult | None: ...

    def set_test_result(self, result: TestResult | None) -> None: ...

    def verified_at(self, ring: str) -> datetime | None: ...


class GateEvaluator(Protocol):
    """One gate type's rules."""

    async def evaluate(self, gate: Any, ctx: GateContext) -> Decision: ...


async def measure_once(ctx: GateContext, activity: str, request: Any, result_type: type[R]) -> R:
    """One measurement activity (a metric query, a probe), one attempt."""
    result: R = await ctx.activity(
        activity, request, result_type=result_type, start_to_close_timeout=QUERY_TIMEOUT, retry_policy=ONE_ATTEMPT
    )
    return result


def measure(ctx: GateContext, outcome: str, value: float | None = None, detail: str = "") -> None:
    """Record one measurement on the gate (the last :data:`MAX_MEASUREMENTS` are kept)."""
    ctx.status.measurements.append(Measurement(at=ctx.now(), value=value, outcome=outcome, detail=detail))
    del ctx.status.measurements[:-MAX_MEASUREMENTS]


def wait_until(ctx: GateContext, reason: str | None, next_check: datetime | None) -> None:
    """Show the gate as waiting (for a timer, a person or an event)."""
    ctx.status.state = "Waiting"
    ctx.status.next_check = next_check
    if reason is not None:
        ctx.status.reason = reason


async def sleep_until(ctx: GateContext, until: datetime) -> None:
    """Sleep until ``until`` (no timer when it has passed: a continued run that resumes late)."""
    remaining = until - ctx.now()
    if remaining > timedelta(0):
        await ctx.sleep(remaining)


def fmt_duration(td: timedelta) -> str:
    """``1h``, ``5m`` or ``30s``: durations as a person wrote them in the definition."""
    seconds = int(td.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    return f"{seconds}s"
