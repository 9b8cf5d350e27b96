"""``timeWindow``: the named calendar must allow this instant; otherwise wait until the next allowed
instant, or look again at once when an operator changes the calendar (``calendar_changed``)."""

from __future__ import annotations

from temporalio.common import RetryPolicy

from definitions.promotion import GateOutcome, TimeWindowGate
from definitions.promotion_runs import NextAllowed, NextAllowedResult
from workflows.promotion.gates.base import QUERY_TIMEOUT, Decision, GateContext, wait_until

CALENDAR_RETRY = RetryPolicy(maximum_attempts=3, non_retryable_error_types=["CalendarClosed", "CalendarInvalid"])


class TimeWindowEvaluator:
    async def evaluate(self, gate: TimeWindowGate, ctx: GateContext) -> Decision:
        while True:
            generation = ctx.calendar_generation()
            res: NextAllowedResult = await ctx.activity(
                "konfidence.next_allowed",
                NextAllowed(calendar=ctx.calendar(gate.calendar), after=ctx.now()),
                result_type=NextAllowedResult,
                start_to_close_timeout=QUERY_TIMEOUT,
                retry_policy=CALENDAR_RETRY,
            )
            now = ctx.now()
            if res.at <= now:
                return Decision(GateOutcome.PASSED, f"calendar {gate.calendar!r} allows this instant")
            wait_until(ctx, f"calendar {gate.calendar!r}: {res.reason}; next allowed {res.at:%Y-%m-%d %H:%M}Z", res.at)
            await ctx.wait(
                lambda g=generation: ctx.calendar_generation() != g,  # type: ignore[misc]
                timeout=res.at - now,
            )
