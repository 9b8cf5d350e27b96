"""Gates between the waves of a fleet rollout, decided by the promotion's own evaluators.

The models are the promotion's (``definitions.promotion``: soak, prometheus, httpProbe, approval,
timeWindow), each evaluator is the promotion's (``workflows/promotion/gates``), and each gate's live
record is the promotion's ``GateStatus`` (state, outcome, reason, next check, measurements, votes).
What differs is the driver: the gates before a wave run in order; a gate that ends Error is retried
after ``defaults.errorBackoff`` (doubling, ``errorRetries`` times); any other outcome than Passed
(Failed, TimedOut, Inconclusive, Error after its retries) stops the rollout, later waves untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from definitions.promotion import ApprovalGate, Calendar, GateOutcome, gate_names
from definitions.promotion_runs import GateProgress, GateStatus, TestResult, Vote
from definitions.rollout import Rollout, RolloutStatus, WaveApproval, WaveStatus
from workflows.failures import failure_message
from workflows.promotion.gates import evaluators
from workflows.promotion.gates.approval import verdict
from workflows.promotion.gates.base import Decision, GateEvaluator, fmt_duration
from workflows.promotion.gates.temporal import TemporalGateContext, finish_or_cancel

#: The patch that moved wave gates onto the promotion's evaluators (runs started before keep the old path).
PATCH = "rollout-promotion-gates-v1"


class WaveGateContext(TemporalGateContext):
    """The promotion's Temporal gate context, for a wave: its calendars are the rollout's; there are
    no test results or upstream rings."""

    def __init__(self, status: GateStatus, wave: int, calendars: dict[str, Calendar]) -> None:
        self.status = status
        self.workflow_id = workflow.info().workflow_id
        self.pipeline = self.workflow_id
        self.version = ""
        self.ring = f"wave-{wave}"
        self._wave_calendars = calendars
        #: The evaluator's counters and timer; a rollout does not continue as new, so they start fresh.
        self.progress = GateProgress(ring=self.ring, gate=status.name)

    async def activity(self, name: str, arg: Any, **options: Any) -> Any:
        return await workflow.execute_activity(name, arg, **options)  # a rollout never continues as new

    def calendar(self, name: str) -> Any:
        return self._wave_calendars[name]

    def calendar_generation(self) -> int:
        return 0

    def test_result(self) -> TestResult | None:
        return None

    def set_test_result(self, result: TestResult | None) -> None:
        return None

    def verified_at(self, ring: str) -> None:
        return None


def gate_records(rollout: Rollout) -> list[GateStatus]:
    """A fresh ``GateStatus`` per gate of the rollout, named as the promotion names them."""
    return [
        GateStatus(name=name, type=g.type, phase="wave", needed=g.quorum if isinstance(g, ApprovalGate) else 0)
        for name, g in zip(gate_names(rollout.gates), rollout.gates, strict=True)
    ]


def _settle(gs: GateStatus, outcome: GateOutcome, reason: str) -> GateOutcome:
    gs.state, gs.outcome, gs.reason, gs.next_check = "Done", outcome, reason, None
    gs.finished_at = workflow.now()
    return outcome


async def _decide(
    gs: GateStatus,
    gate: Any,
    evaluator: GateEvaluator,
    ctx: WaveGateContext,
    rollout: Rollout,
    halted: Callable[[], bool],
) -> GateOutcome | None:
    """One gate to its outcome under its timeout and Error retries; None when the rollout halted."""
    defaults = rollout.defaults
    timeout = gate.timeout or defaults.gate_timeout
    deadline = workflow.now() + timeout
    retries, backoff = defaults.error_retries, defaults.error_backoff
    gs.started_at = workflow.now()
    while True:
        gs.state, gs.outcome = "Running", None
        ctx.progress.restart()
        task = asyncio.ensure_future(evaluator.evaluate(gate, ctx))
        if not await finish_or_cancel(task, halted, deadline):
            if halted():
                _settle(gs, GateOutcome.ERROR, f"cancelled before it decided (was: {gs.reason})")
                return None
            return _settle(gs, GateOutcome.TIMED_OUT, f"no result within {fmt_duration(timeout)}")
        try:
            decision = task.result()
        except ActivityError as exc:  # a calendar that allows nothing, a measurement that could not run
            decision = Decision(GateOutcome.ERROR, f"the check could not run: {failure_message(exc)}")
        if decision.outcome is not GateOutcome.ERROR or retries <= 0:
            return _settle(gs, decision.outcome, decision.reason)
        retries -= 1
        gs.state, gs.outcome, gs.next_check = "Waiting", GateOutcome.ERROR, workflow.now() + backoff
        gs.reason = f"{decision.reason}; retrying in {fmt_duration(backoff)} ({retries} retries left)"
        try:
            await workflow.wait_condition(halted, timeout=backoff)
        except TimeoutError:
            pass
        if halted():
            return None
        backoff *= 2


async def run_wave_gates(
    wave: WaveStatus, rollout: Rollout, status: RolloutStatus, halted: Callable[[], bool]
) -> str | None:
    """The gates before ``wave``, in order. Returns why the rollout must stop (a gate did not pass), or
    None (all passed, or the rollout halted meanwhile)."""
    wave.gates = gate_records(rollout)
    table = evaluators(rollout.defaults)
    for gs, gate in zip(wave.gates, rollout.gates, strict=True):
        if halted():
            return None
        wave.gate = f"{gs.name} ({gs.type})"
        status.message = f"wave {wave.index}: gate {wave.gate}"
        ctx = WaveGateContext(gs, wave.index, rollout.calendars)
        outcome = await _decide(gs, gate, table[gate.type], ctx, rollout, halted)
        if outcome is None:
            return None
        wave.gate = f"{gs.name}: {outcome.value}: {gs.reason}"
        if outcome is not GateOutcome.PASSED:
            return f"gate {gs.name} before wave {wave.index} {outcome.value}: {gs.reason}"
    return None


def approval_gate(wave: WaveStatus, rollout: Rollout, approval: WaveApproval) -> tuple[GateStatus, ApprovalGate]:
    """The approval gate of ``wave`` a vote is for (named, or the one waiting); ValueError says why not."""
    candidates = [
        (gs, g)
        for gs, g in zip(wave.gates, rollout.gates, strict=False)
        if isinstance(g, ApprovalGate) and (not approval.gate or gs.name == approval.gate)
    ]
    waiting = [(gs, g) for gs, g in candidates if gs.state == "Waiting" and verdict(gs) is None]
    if not waiting:
        what = f"gate {approval.gate!r}" if approval.gate else "an approval gate"
        raise ValueError(f"wave {wave.index} is not waiting for {what} (wave state {wave.state})")
    gs, gate = waiting[0]
    if gate.approvers and approval.approver not in gate.approvers:
        raise ValueError(f"{approval.approver!r} may not approve; eligible: {', '.join(gate.approvers)}")
    if any(v.approver == approval.approver for v in gs.votes):
        raise ValueError(f"{approval.approver!r} has already voted on wave {wave.index}/{gs.name}")
    return gs, gate


def record_vote(gs: GateStatus, approval: WaveApproval) -> None:
    gs.votes.append(
        Vote(approver=approval.approver, approve=approval.approve, comment=approval.comment, at=workflow.now())
    )


def with_pending(status: RolloutStatus) -> RolloutStatus:
    """A copy of the status that says why each gated wave waits, and which approvals are open."""
    view = status.model_copy(deep=True)
    view.waiting_approvals = []
    for wave in view.waves:
        open_gates = [g for g in wave.gates if g.state != "Done"]
        wave.pending = "; ".join(
            f"{g.name}: {g.reason}" + (f" (next check {g.next_check:%H:%M:%S}Z)" if g.next_check else "")
            for g in open_gates
            if g.state != "Pending"
        )
        view.waiting_approvals += [
            f"{wave.index}/{g.name}" for g in open_gates if g.type == "approval" and g.state == "Waiting"
        ]
    return view
