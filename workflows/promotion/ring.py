"""``PromotionWorkflow``: the ring state machine of one (pipeline, version).

Per ring, in order: WaitingLock (the coordinator hands over the ring, one promotion per ring at a
time) -> EntryGates -> Deploying (flags, then every target Stage) -> Verifying -> Verified; or
Failed / RolledBack / Stopped. Gates run in ``gating.py``, deployment and rollback in ``deploy.py``,
operator handlers in ``operator.py``; this module owns the order of the phases and the run's result.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from definitions.promotion import ApprovalGate, GateOutcome, Ring, ring_gates
from definitions.promotion_runs import (
    FINAL_STATES,
    GateRef,
    GateStatus,
    PromotionCarry,
    PromotionOutcome,
    PromotionRequest,
    PromotionStatus,
    RegisterReply,
    RegisterRequest,
    RingAttempt,
    RingGrant,
    RingLockRequest,
    RingReport,
    RingState,
    RunFinished,
    RunState,
    Superseded,
    TargetStatus,
)
from workflows.failures import failure_message
from workflows.freeze_guard import FREEZE_PATCH, hold_while_frozen
from workflows.promotion.coordinator import RELEASE_PATCH
from workflows.promotion.deploy import apply_flags, deploy, roll_back
from workflows.promotion.gates.base import QUERY_TIMEOUT
from workflows.promotion.gating import GateRunner
from workflows.promotion.operator import OperatorHandlers
from workflows.promotion.state import PASSING, ContinueAsNew


@workflow.defn
class PromotionWorkflow(GateRunner, OperatorHandlers):
    @workflow.run
    async def run(self, request: PromotionRequest) -> PromotionOutcome:
        self._req = request
        p = request.promotion
        info = workflow.info()
        for ring in p.spec.rings:
            for _, name, gate in ring_gates(ring):
                self._gate_models[(ring.name, name)] = gate
        if request.carried is not None:  # the next run of a long promotion: go on where the last stopped
            carried = request.carried
            self._restore(carried)
            return await self._rings(carried.ring_index, carried.phase)
        self._status = PromotionStatus(
            pipeline=p.name,
            version=request.version,
            workflow_id=info.workflow_id,
            requested_by=request.requested_by,
            override_reason=request.override_reason,
            rings=[
                RingAttempt(
                    ring=r.name,
                    attempt=0,
                    version=request.version,
                    sequence=0,
                    pending="waiting for the rings before it",
                )
                for r in p.spec.rings
            ],
        )
        self._calendars = dict(p.spec.calendars)
        try:
            await workflow.execute_activity(
                "konfidence.validate",
                request,
                start_to_close_timeout=QUERY_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["PromotionInvalid"]),
            )
        except ActivityError as exc:
            raise ApplicationError(failure_message(exc), type="PromotionInvalid", non_retryable=True) from None
        self._status.state = RunState.QUEUED
        self._status.message = "registering with the coordinator"
        await workflow.execute_activity(
            "konfidence.register",
            RegisterRequest(
                pipeline=p.name,
                version=request.version,
                workflow_id=info.workflow_id,
                override_reason=request.override_reason,
                requested_by=request.requested_by,
                supersede=p.spec.version_policy.supersede,
                block_failed=p.spec.version_policy.block_failed,
                pins=p.spec.pins(request.version),
                release=p.spec.release is not None,
                component=p.spec.subject.component,
            ),
            start_to_close_timeout=QUERY_TIMEOUT,
        )
        await workflow.wait_condition(lambda: self._registered is not None)
        assert self._registered is not None
        self._status.sequence = self._registered.sequence
        if self._registered.conflict and workflow.patched(RELEASE_PATCH):
            self._status.state = RunState.REFUSED
            self._status.message = f"release {request.version} refused: {self._registered.reason}"
            return self._finish_outcome()
        if self._registered.blocked:
            self._status.state = RunState.BLOCKED
            self._status.message = (
                f"version {request.version} is blocked: {self._registered.reason}; start it "
                "again with an override reason to promote it anyway"
            )
            return self._finish_outcome()
        self._status.state = RunState.RUNNING
        self._status.message = ""
        return await self._rings(0, None)

    async def _rings(self, first: int, phase: str | None) -> PromotionOutcome:
        """The rings from ``first`` on (``phase``: where a continued run resumes ring ``first``)."""
        assert self._req is not None
        request, p, info = self._req, self._req.promotion, workflow.info()
        final = RunState.SUCCEEDED
        try:
            for index, ring in enumerate(p.spec.rings):
                if index < first:
                    continue
                final = await self._run_ring(index, ring, phase if index == first else None)
                if final is not RunState.SUCCEEDED:
                    break
        except ContinueAsNew as stop:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(request.model_copy(update={"carried": self._carry(index, stop.phase)}))
        halted = self._halt()
        self._status.state = (
            halted if (halted and final is RunState.SUCCEEDED and halted is not RunState.ROLLED_BACK) else final
        )
        for ring_status in self._status.rings:
            if ring_status.state is RingState.PENDING:
                ring_status.state = RingState.STOPPED
                ring_status.pending = f"not started: the run ended {self._status.state.value}"
        await self._tell(
            "finished", RunFinished(workflow_id=info.workflow_id, version=request.version, state=self._status.state)
        )
        return self._finish_outcome()

    def _finish_outcome(self) -> PromotionOutcome:
        return PromotionOutcome(status=self._status, audit=list(self._audit))

    # --- continue-as-new (docs/promotion.md, "Long promotions") ------------------------------------

    def _carry(self, ring_index: int, phase: str) -> PromotionCarry:
        assert self._registered is not None
        return PromotionCarry(
            continued=self._continued + 1,
            ring_index=ring_index,
            phase=phase,
            status=self._status,
            audit=self._audit,
            attempts=self._attempts,
            registered=self._registered,
            grants=self._grants,
            verified_at=self._verified_at,
            calendars=self._calendars,
            calendar_generation=self._calendar_gen,
            overrides=list(self._overrides.values()),
            retry=[GateRef(ring=r, gate=g) for r, g in sorted(self._retry)],
            test_results=list(self._test_results.values()),
            gates=[p for (ring, _), p in self._progress.items() if ring == self._status.rings[ring_index].ring],
            superseded=self._superseded,
            abort=self._abort,
            rollback=self._rollback,
            alert=self._alert,
        )

    def _restore(self, c: PromotionCarry) -> None:
        self._continued = c.continued
        self._status = c.status
        self._audit = c.audit
        self._attempts = c.attempts
        self._registered = c.registered
        self._grants = c.grants
        self._verified_at = c.verified_at
        self._calendars = dict(c.calendars)
        self._calendar_gen = c.calendar_generation
        self._overrides = {(o.ring, o.gate): o for o in c.overrides}
        self._retry = {(r.ring, r.gate) for r in c.retry}
        self._test_results = {(t.ring, t.gate): t for t in c.test_results}
        self._progress = {(g.ring, g.gate): g for g in c.gates}
        self._superseded, self._abort, self._rollback, self._alert = c.superseded, c.abort, c.rollback, c.alert

    # --- one ring --------------------------------------------------------------------------------

    async def _run_ring(self, index: int, ring: Ring, resume: str | None = None) -> RunState:
        assert self._req is not None
        if resume is not None:  # a continued run: the attempt (and the ring lock) carried over
            self._current = self._status.rings[index]
            return await self._attempt(index, ring, self._current, resume)
        number = self._attempts.get(ring.name, 0) + 1
        self._attempts[ring.name] = number
        att = RingAttempt(
            ring=ring.name,
            attempt=number,
            version=self._req.version,
            sequence=self._status.sequence,
            started_at=workflow.now(),
            targets=[TargetStatus(stage=f"{t.namespace}/{t.stage}", landscape=t.landscape) for t in ring.targets],
            components=self._p.spec.pins(self._req.version),
            gates=[
                GateStatus(
                    name=name, type=gate.type, phase=phase, needed=gate.quorum if isinstance(gate, ApprovalGate) else 0
                )
                for phase, name, gate in ring_gates(ring)
            ],
        )
        self._status.rings[index] = att
        self._current = att
        return await self._attempt(index, ring, att, None)

    async def _attempt(self, index: int, ring: Ring, att: RingAttempt, resume: str | None) -> RunState:
        try:
            return await self._ring_phases(index, ring, att, resume)
        finally:
            if not self._continuing:  # (continuing as new: the attempt goes on in the next run)
                att.finished_at = workflow.now()
                att.pending = ""
                self._audit.append(att.model_copy(deep=True))  # the immutable record of this attempt
                self._current = None

    async def _ring_phases(self, index: int, ring: Ring, att: RingAttempt, resume: str | None) -> RunState:
        """The ring's phases; ``resume`` (entry, freeze or verify) skips those a run before this one
        of the same chain (continue-as-new) completed, the ring lock included."""
        assert self._req is not None
        wf_id = workflow.info().workflow_id
        report = RingReport(ring=ring.name, version=self._req.version, workflow_id=wf_id)
        if resume is None:
            # 1. the ring lock
            att.state = RingState.WAITING_LOCK
            att.pending = "waiting for the coordinator to hand over the ring (one promotion per ring at a time)"
            await self._tell(
                "acquire", RingLockRequest(ring=ring.name, workflow_id=wf_id, sequence=self._status.sequence)
            )
            await workflow.wait_condition(lambda: ring.name in self._grants or self._halt() is not None)
            if self._halt() is not None:
                return self._stopped(att, "stopped while waiting for the ring")
            grant = self._grants[ring.name]
            att.rollback_to = grant.last_verified
            att.rollback_components = grant.last_verified_pins
            att.rollback_component = grant.last_verified_component
        try:
            for up in self._p.upstream_of(index) if resume is None else []:
                if up not in self._verified_at:
                    att.state = RingState.FAILED
                    att.reason = f"upstream ring {up} is not verified"
                    return RunState.FAILED
            # 2. entry gates
            outcome, reason = GateOutcome.PASSED, ""
            if resume in (None, "entry"):
                await self._pause_point()
                att.state = RingState.ENTRY_GATES
                outcome, reason = await self._gates(att, "entry")
            if outcome not in PASSING:
                if self._halt() is not None:
                    return self._stopped(att, f"stopped during entry gates: {self._halt_text()}")
                att.state = RingState.FAILED
                att.reason = f"entry gates: {reason}"
                rejected = any(g.type == "approval" and g.outcome is GateOutcome.FAILED for g in att.gates)
                self._status.message = f"ring {ring.name} not entered: {reason}"
                return RunState.REJECTED if rejected else RunState.FAILED
            # 3. flags and deployment
            if resume != "verify":
                await self._pause_point()
                if self._halt() is not None:
                    return self._stopped(att, f"stopped before deploying: {self._halt_text()}")
                if workflow.patched(FREEZE_PATCH):
                    await self._freeze_point(ring, att)
                    if self._halt() is not None:
                        return self._stopped(att, f"stopped while frozen: {self._halt_text()}")
                att.state = RingState.DEPLOYING
                deploy_error = await apply_flags(ring, att, self._req.version) or await deploy(
                    ring, att, self._p.spec.subject, self._req.version
                )
                if deploy_error:
                    return await self._fail_ring(ring, att, report, f"deployment: {deploy_error}")
            # 4. verify gates
            att.state = RingState.VERIFYING
            outcome, reason = await self._gates(att, "verify")
            if outcome in PASSING:
                att.state = RingState.VERIFIED
                att.reason = reason
                self._verified_at[ring.name] = workflow.now()
                await self._tell("verified", report)
                return RunState.SUCCEEDED
            halted = self._halt()
            if halted is RunState.ROLLED_BACK:
                assert self._rollback is not None
                await roll_back(
                    ring,
                    att,
                    self._p.spec.subject,
                    f"rollback requested by {self._rollback.by or 'an operator'}: {self._rollback.reason}",
                )
                return RunState.ROLLED_BACK
            if halted is not None:
                return self._stopped(att, f"stopped during verification: {self._halt_text()}")
            return await self._fail_ring(ring, att, report, reason)
        finally:
            if not self._continuing:  # (continuing as new: the ring stays held for the next run)
                await self._tell("release", report)

    async def _freeze_point(self, ring: Ring, att: RingAttempt) -> None:
        """A landscape-wide freeze holds the ring before it deploys; `pending` and the status message
        say "frozen by X since T: reason" (or the exemption it proceeds under)."""
        assert self._req is not None

        def report(message: str) -> None:
            att.pending = message
            self._status.message = message

        verdict = await hold_while_frozen(
            f"deploy {self._req.version} to ring {ring.name}",
            report,
            stop=lambda: self._history_full() and self._continue_now(),
        )
        if self._continuing:  # a long freeze: the next run of the chain holds on
            raise ContinueAsNew("freeze")
        if not verdict.frozen:
            att.pending = ""

    def _stopped(self, att: RingAttempt, reason: str) -> RunState:
        att.state = RingState.STOPPED
        att.reason = reason
        self._status.message = reason
        halted = self._halt()
        if halted is RunState.ROLLED_BACK:
            return RunState.ROLLED_BACK
        return halted or RunState.ABORTED

    async def _fail_ring(self, ring: Ring, att: RingAttempt, report: RingReport, reason: str) -> RunState:
        att.state = RingState.FAILED
        att.reason = reason
        self._status.message = f"ring {ring.name} failed: {reason}"
        if self._p.spec.version_policy.block_failed:
            await self._tell("failed", report.model_copy(update={"reason": reason}))
        await roll_back(ring, att, self._p.spec.subject, reason)
        att.state = RingState.FAILED if att.state is not RingState.ROLLED_BACK else att.state
        return RunState.FAILED

    # --- coordinator signals ---------------------------------------------------------------------

    @workflow.signal
    def registered(self, reply: RegisterReply) -> None:
        self._registered = reply

    @workflow.signal
    def granted(self, grant: RingGrant) -> None:
        self._grants[grant.ring] = grant

    @workflow.signal
    def superseded(self, info: Superseded) -> None:
        if self._superseded is None and self._status.state not in FINAL_STATES:
            self._superseded = info
