"""``upstreamVerified``: the named rings verified this version, optionally at least ``minSoak`` ago."""

from __future__ import annotations

from definitions.promotion import GateOutcome, UpstreamVerifiedGate
from workflows.promotion.gates.base import Decision, GateContext, wait_until


class UpstreamVerifiedEvaluator:
    async def evaluate(self, gate: UpstreamVerifiedGate, ctx: GateContext) -> Decision:
        verified = {r: ctx.verified_at(r) for r in gate.rings}
        missing = [r for r, at in verified.items() if at is None]
        if missing:
            return Decision(GateOutcome.FAILED, f"not verified in {', '.join(missing)}")
        if gate.min_soak:
            ready = max(at for at in verified.values() if at is not None) + gate.min_soak
            if ready > ctx.now():
                wait_until(ctx, f"verified upstream; soaking there until {ready:%H:%M:%S}Z", ready)
                await ctx.sleep(ready - ctx.now())
        return Decision(GateOutcome.PASSED, f"verified in {', '.join(gate.rings)}")
