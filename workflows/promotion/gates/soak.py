"""``soak``: the version runs untouched for a while; nothing to measure, only time to pass."""

from __future__ import annotations

from definitions.promotion import GateOutcome, SoakGate
from workflows.promotion.gates.base import Decision, GateContext, fmt_duration, sleep_until, wait_until


class SoakEvaluator:
    async def evaluate(self, gate: SoakGate, ctx: GateContext) -> Decision:
        until = ctx.progress.until or ctx.now() + gate.duration  # a continued run soaks the rest
        ctx.progress.until = until
        wait_until(ctx, f"soaking {fmt_duration(gate.duration)} until {until:%Y-%m-%d %H:%M:%S}Z", until)
        await sleep_until(ctx, until)
        return Decision(GateOutcome.PASSED, f"soaked {fmt_duration(gate.duration)}")
