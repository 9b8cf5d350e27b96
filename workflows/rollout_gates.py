"""Gates between the waves of a fleet rollout, decided by the promotion's own evaluators.

The models are the promotion's (``definitions.promotion``: soak, prometheus, httpProbe, approval,
timeWindow), each evaluator is the promotion's (``workflows/promotion/gates``), and each gate's live
record is the promotion's ``GateStatus`` (state, outcome, reason, next check, measurements, votes).
What differs is the driver: the gates before a wave run in order; a gate that ends Error is retried
after ``defaults.errorBackoff`` (doubling, ``errorRetries`` times); any other outcome than Passed
(Failed, TimedOut, Inconclusive, Error after its retries) stops the rollout, later waves untouched.

Long gates (patch ``i13-rollout-gate-continue-as-new-v2``): every wait of a gate (the evaluator's timer
before its next check, an approval waiting for votes, an Error backoff) is a safe point: no check is
out, and the gate's ``GateProgress`` (deadline, Error retries and backoff, the evaluator's counters and
timer) says how to resume. Once the history passed ``continueAsNewAfter`` such a wait raises
:class:`GateContinue` (at once, or when the history grows while it waits); the rollout continues as new
carrying the wave's gate records and the open gate's progress, and the next run resumes the gate there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from definitions.promotion import ApprovalGate, Calendar, GateOutcome, gate_names
from definitions.promotion_runs import GateProgress, GateStatus, TestResult, Vote
from definitions.rollout import Rollout, RolloutStatus, WaveApproval, WaveStatus
from workflows.failures import failure_message
from workflows.freeze_guard import history_past
from workflows.promotion.gates import evaluators
from workflows.promotion.gates.approval import verdict
from workflows.promotion.gates.base import Decision, GateEvaluator, fmt_duration
from workflows.promotion.gates.temporal import TemporalGateContext, finish_or_cancel

#: The patch that moved wave gates onto the promotion's evaluators (runs started before keep the old path).
PATCH = "rollout-promotion-gates-v1"
#: The patch that lets a rollout continue as new in the middle of a wave gate (asked once at the start of
#: every run; runs started before it keep their gates unbounded and replay unchanged).
CONTINUE_PATCH = "i13-rollout-gate-continue-as-new-v2"


class GateContinue(Exception):
    """Raised at a safe point of a wave gate once the history passed the bound: the rollout catches it
    and continues as new carrying ``GateBound.progress`` (``workflows/rollout.py``)."""


class GateBound:
    """The history bound of a rollout's wave gates, and the open gates' progress by gate name (the
    wave's gates run one at a time; a continued run starts with the progress it was carried)."""

    def __init__(self, after: int, on: bool = False, carried: list[GateProgress] | None = None) -> None:
        self.after = after
        #: ``workflow.patched(CONTINUE_PATCH)``, decided once per run before anything else happens.
        self.on = on
        self.progress: dict[str, GateProgress] = {p.gate: p for p in carried or []}

    def full(self) -> bool:
        """Side-effect free (``wait_condition`` asks it): the run passed its bound (or the server suggests
        continue-as-new) and may continue as new."""
        return self.on and history_past(self.after)

    def check(self) -> None:
        if self.full():
            raise GateContinue()


class WaveGateContext(TemporalGateContext):
    """The promotion's Temporal gate context, for a wave: its calendars are the rollout's; there are
    no test results or upstream rings. Its waits are the gate's safe points (``GateBound``); an
    abort stops the evaluator there too (cooperatively, so a timer that fires in the same step as the
    cancellation never lets it take one more measurement)."""

    def __init__(
        self,
        status: GateStatus,
        wave: int,
        calendars: dict[str, Calendar],
        progress: GateProgress,
        bound: GateBound,
        halted: Callable[[], bool],
    ) -> None:
        self.status = status
        self.workflow_id = workflow.info().workflow_id
        self.pipeline = self.workflow_id
        self.version = ""
        self.ring = f"wave-{wave}"
        self._wave_calendars = calendars
        #: The evaluator's counters and timer (and the driver's deadline, retries, backoff): carried
        #: when the rollout continues as new mid-gate, fresh otherwise.
        self.progress = progress
        self.bound = bound
        self._halted = halted

    async def activity(self, name: str, arg: Any, **options: Any) -> Any:
        return await workflow.execute_activity(name, arg, **options)  # never out at a continue-as-new

    async def sleep(self, duration: timedelta) -> None:
        if not self.bound.on:  # a run from before the patch: its timers as they were
            await workflow.sleep(duration)
            return
        await self.wait(lambda: False, duration)

    async def wait(self, condition: Callable[[], bool], timeout: timedelta | None = None) -> bool:
        if not self.bound.on:
            return await super().wait(condition, timeout)
        if condition():
            return True
        if self._halted():
            raise asyncio.CancelledError()  # the driver settles the gate
        self.bound.check()
        if not await super().wait(lambda: condition() or self.bound.full() or self._halted(), timeout):
            return False
        if condition():
            return True
        if self._halted():
            raise asyncio.CancelledError()  # the driver settles the gate
        raise GateContinue()

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
    timeout: timedelta,
    resumed: bool,
    halted: Callable[[], bool],
) -> GateOutcome | None:
    """One gate to its outcome under its timeout and Error retries; None when the rollout halted.
    Deadline, retries and backoff live in the gate's progress: a ``resumed`` gate (its progress
    carried) goes on evaluating (the evaluator's counters and timer kept) or in its Error backoff, with
    the deadline it had. :class:`GateContinue` passes through (only ever raised at a wait)."""
    prog, bound = ctx.progress, ctx.bound
    assert prog.deadline is not None
    if not resumed:
        gs.started_at = workflow.now()
    while True:
        if prog.stage == "backoff":
            assert gs.next_check is not None
            left = gs.next_check - workflow.now()
            if left > timedelta(0):
                bound.check()
                try:
                    await workflow.wait_condition(lambda: halted() or bound.full(), timeout=left)
                except TimeoutError:
                    pass
            if halted():
                return None
            bound.check()
            prog.backoff *= 2
            prog.stage = "evaluating"
            resumed = False
        if resumed and workflow.now() >= prog.deadline:  # the deadline passed while continuing as new
            return _settle(gs, GateOutcome.TIMED_OUT, f"no result within {fmt_duration(timeout)}")
        gs.state, gs.outcome = "Running", None
        if not resumed:
            prog.restart()
        resumed = False
        task = asyncio.ensure_future(evaluator.evaluate(gate, ctx))
        if not await finish_or_cancel(task, halted, prog.deadline) or task.cancelled():
            if halted():
                _settle(gs, GateOutcome.ERROR, f"cancelled before it decided (was: {gs.reason})")
                return None
            return _settle(gs, GateOutcome.TIMED_OUT, f"no result within {fmt_duration(timeout)}")
        try:
            decision = task.result()
        except ActivityError as exc:  # a calendar that allows nothing, a measurement that could not run
            decision = Decision(GateOutcome.ERROR, f"the check could not run: {failure_message(exc)}")
        if decision.outcome is not GateOutcome.ERROR or prog.retries <= 0:
            return _settle(gs, decision.outcome, decision.reason)
        prog.retries -= 1
        prog.stage = "backoff"
        gs.state, gs.outcome, gs.next_check = "Waiting", GateOutcome.ERROR, workflow.now() + prog.backoff
        gs.reason = f"{decision.reason}; retrying in {fmt_duration(prog.backoff)} ({prog.retries} retries left)"


async def run_wave_gates(
    wave: WaveStatus, rollout: Rollout, status: RolloutStatus, halted: Callable[[], bool], bound: GateBound
) -> str | None:
    """The gates before ``wave``, in order. Returns why the rollout must stop (a gate did not pass), or
    None (all passed, or the rollout halted meanwhile). Raises :class:`GateContinue` at a safe point once
    the history passed ``bound``: the caller carries the wave's gate records and ``bound.progress``, and
    the next run calls this again: gates already Done are not run again, the open one resumes."""
    if not (bound.on and wave.gates):  # (a continued run keeps the records it was carried)
        wave.gates = gate_records(rollout)
    table = evaluators(rollout.defaults)
    defaults = rollout.defaults
    for gs, gate in zip(wave.gates, rollout.gates, strict=True):
        if gs.state == "Done":  # decided in an earlier run of the chain (it passed)
            continue
        if halted():
            return None
        wave.gate = f"{gs.name} ({gs.type})"
        status.message = f"wave {wave.index}: gate {wave.gate}"
        timeout = gate.timeout or defaults.gate_timeout
        prog = bound.progress.get(gs.name)
        resumed = prog is not None
        if prog is None:
            prog = bound.progress[gs.name] = GateProgress(
                ring=f"wave-{wave.index}",
                gate=gs.name,
                deadline=workflow.now() + timeout,
                retries=defaults.error_retries,
                backoff=defaults.error_backoff,
            )
        ctx = WaveGateContext(gs, wave.index, rollout.calendars, prog, bound, halted)
        outcome = await _decide(gs, gate, table[gate.type], ctx, timeout, resumed, halted)
        del bound.progress[gs.name]
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
