"""What an operator can do to a running promotion: vote on approval gates (``approve``/``reject``,
with eligibility and the four-eyes rule checked before the vote lands in history), override a gate
(audited), retry a paused gate, pause, resume, abort, roll back, report a test result, raise an
external alert, change a calendar; and the ``status``/``audit`` queries that say why a ring waits."""

from __future__ import annotations

from temporalio import workflow

from definitions.promotion_runs import (
    FINAL_STATES,
    CalendarChange,
    ExternalAlert,
    GateOverride,
    GateRef,
    GateStatus,
    OperatorAction,
    Override,
    PromotionStatus,
    RingAttempt,
    RingState,
    TestResult,
    Vote,
)
from definitions.runs import ApprovalDecision, ApprovalState
from workflows.promotion.gates.approval import verdict
from workflows.promotion.state import PromotionState


class OperatorHandlers(PromotionState):
    def _find_gate(self, ref: str, want_type: str | None = None) -> GateStatus:
        att = self._current
        ring, _, gate = ref.rpartition("/")
        if att is None or (ring and ring != att.ring):
            raise ValueError(f"{ref!r}: no such gate in the ring being promoted ({att.ring if att else 'none'})")
        for gs in att.gates:
            if gs.name == gate and (want_type is None or gs.type == want_type):
                return gs
        names = ", ".join(f"{att.ring}/{g.name}" for g in att.gates)
        raise ValueError(f"{ref!r}: no such gate in ring {att.ring}; gates: {names}")

    def _check_open(self) -> None:
        if self._superseded is not None:
            raise ValueError(
                f"version {self._status.version} was superseded by {self._superseded.by_version}; "
                "approvals for it are closed"
            )
        if self._status.state in FINAL_STATES or self._halt() is not None:
            raise ValueError(
                f"the promotion of {self._status.version} is {self._status.state.value}; nothing to decide"
            )

    @workflow.update
    def approve(self, decision: ApprovalDecision) -> ApprovalState:
        """Engine-compatible: ``step`` is ``ring/gate`` (or the gate name in the current ring)."""
        return self._vote(decision)

    def _vote(self, decision: ApprovalDecision) -> ApprovalState:
        gs = self._find_gate(decision.step, "approval")
        gs.votes.append(
            Vote(approver=decision.approver, approve=decision.approve, comment=decision.comment, at=workflow.now())
        )
        decided = verdict(gs)
        return ApprovalState(
            step=decision.step,
            approvals=sum(1 for v in gs.votes if v.approve),
            needed=gs.needed,
            decided=decided is not None,
            approved=decided,
        )

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        self._check_open()
        gs = self._find_gate(decision.step, "approval")
        if gs.state != "Waiting" or verdict(gs) is not None:
            raise ValueError(f"gate {decision.step!r} is not waiting for approval (state {gs.state})")
        assert self._current is not None
        gate = self._gate_models[(self._current.ring, gs.name)]
        if gate.approvers and decision.approver not in gate.approvers:
            raise ValueError(
                f"{decision.approver!r} may not approve {decision.step!r}; eligible: {', '.join(gate.approvers)}"
            )
        if self._status.requested_by and decision.approver == self._status.requested_by:
            raise ValueError(f"{decision.approver!r} requested this promotion and cannot approve it (four-eyes rule)")
        if any(v.approver == decision.approver for v in gs.votes):
            raise ValueError(f"{decision.approver!r} has already voted on {decision.step!r}")

    @workflow.update
    def reject(self, decision: ApprovalDecision) -> ApprovalState:
        return self._vote(decision.model_copy(update={"approve": False}))

    @reject.validator
    def _validate_reject(self, decision: ApprovalDecision) -> None:
        self._validate_approve(decision)

    @workflow.update
    def override_gate(self, override: GateOverride) -> GateStatus:
        """Mark a gate Overridden (audited with who and why); it stops checking."""
        gs = self._find_gate(f"{override.ring}/{override.gate}")
        assert self._current is not None
        self._overrides[(override.ring, gs.name)] = override
        self._current.overrides.append(
            Override(gate=gs.name, by=override.by, reason=override.reason, at=workflow.now())
        )
        return gs

    @override_gate.validator
    def _validate_override(self, override: GateOverride) -> None:
        self._check_open()
        gs = self._find_gate(f"{override.ring}/{override.gate}")
        if gs.state == "Done":
            raise ValueError(f"gate {override.ring}/{override.gate} already ended {gs.outcome}")
        if not override.reason.strip():
            raise ValueError("an override needs a reason (it is audited)")

    @workflow.signal
    def retry_gate(self, ref: GateRef) -> None:
        self._retry.add((ref.ring, ref.gate))

    @workflow.signal
    def pause(self, action: OperatorAction) -> None:
        self._status.paused = True

    @workflow.signal
    def resume(self, action: OperatorAction) -> None:
        self._status.paused = False

    @workflow.signal
    def abort(self, action: OperatorAction) -> None:
        if self._abort is None:
            self._abort = action

    @workflow.signal
    def rollback(self, action: OperatorAction) -> None:
        if self._rollback is None:
            self._rollback = action

    @workflow.signal
    def report_test_result(self, result: TestResult) -> None:
        self._test_results[(result.ring, result.gate)] = result

    @workflow.signal
    def external_alert(self, alert: ExternalAlert) -> None:
        if self._alert is None:
            self._alert = alert

    @workflow.signal
    def calendar_changed(self, change: CalendarChange) -> None:
        self._calendars[change.name] = change.calendar
        self._calendar_gen += 1

    @workflow.query
    def status(self) -> PromotionStatus:
        """The run, every ring's latest attempt, and for the ring in progress why it is pending."""
        waiting = []
        status = self._status.model_copy(deep=True)
        att = next((r for r in status.rings if self._current and r.ring == self._current.ring), None)
        if att is not None:
            for gs in att.gates:
                if gs.type == "approval" and gs.state == "Waiting" and gs.outcome is None:
                    waiting.append(f"{att.ring}/{gs.name}")
            pending = [
                f"{g.name}: {g.reason}" + (f" (next check {g.next_check:%H:%M:%S}Z)" if g.next_check else "")
                for g in att.gates
                if g.state != "Done" and g.phase in ("entry" if att.state is RingState.ENTRY_GATES else "verify",)
            ]
            if pending and att.state in (RingState.ENTRY_GATES, RingState.VERIFYING):
                att.pending = "; ".join(pending)
        status.waiting_approvals = waiting
        return status

    @workflow.query
    def audit(self) -> list[RingAttempt]:
        return list(self._audit)
