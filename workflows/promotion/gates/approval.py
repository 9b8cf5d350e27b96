"""``approval``: a quorum of eligible people approve (Passed); a single rejection fails the gate. The
votes arrive by the ``approve``/``reject`` updates, which check eligibility and the four-eyes rule."""

from __future__ import annotations

from definitions.promotion import ApprovalGate, GateOutcome
from definitions.promotion_runs import GateStatus
from workflows.promotion.gates.base import Decision, GateContext, wait_until


def verdict(gs: GateStatus) -> bool | None:
    """The votes so far: False on any rejection, True once the quorum approved, None while open."""
    if any(not v.approve for v in gs.votes):
        return False
    if sum(1 for v in gs.votes if v.approve) >= max(gs.needed, 1):
        return True
    return None


class ApprovalEvaluator:
    async def evaluate(self, gate: ApprovalGate, ctx: GateContext) -> Decision:
        gs = ctx.status
        who = ", ".join(gate.approvers) if gate.approvers else "anyone"
        wait_until(ctx, f"waiting for approval ({gate.quorum} needed, from {who}): {gate.message}", gs.next_check)
        await ctx.wait(lambda: verdict(gs) is not None)
        if verdict(gs) is False:
            v = next(v for v in gs.votes if not v.approve)
            return Decision(GateOutcome.FAILED, f"rejected by {v.approver}" + (f": {v.comment}" if v.comment else ""))
        return Decision(GateOutcome.PASSED, "approved by " + ", ".join(v.approver for v in gs.votes if v.approve))
