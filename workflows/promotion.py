"""Ring promotion: one workflow per (pipeline, version), one coordinator per pipeline.

``PromotionWorkflow`` (id ``promotion-<pipeline>-<version>``) validates the definition (PromQL in an
activity), registers with the coordinator (which numbers versions, blocks versions that failed and
supersedes older runs), then for each ring in order: takes the ring from the coordinator (one
promotion per ring at a time), runs the entry gates, applies flag actions, deploys every target Stage
(bounded parallelism) and waits for Ready, and runs the verify gates concurrently. All gates Passed or
Overridden: the ring is verified. Failed (or TimedOut in verify, or Error with ``rollbackOnError``):
the ring rolls back to its last verified version (never a rollback of a rollback), its flags are
reverted, the version is blocked, and the run stops. Error retries with backoff, then, like
Inconclusive, pauses the gate for a person (retry, override, roll back, abort).

``PromotionCoordinatorWorkflow`` (id ``promotion-coordinator-<pipeline>``) talks to runs by signals
only and continues as new when its history grows. ``PromotionStepWorkflow`` is the ``promotion.run``
pipeline step: it starts the promotion as a child with the deterministic id.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from definitions import queues
from definitions.expressions import ExpressionError, evaluate_bool
from definitions.promotion import (
    ApprovalGate,
    GateOutcome,
    HttpProbeGate,
    PrometheusGate,
    PromotionPipeline,
    PromotionResult,
    PromotionRunArgs,
    Ring,
    RingResult,
    SoakGate,
    TestSuiteGate,
    TimeWindowGate,
    UpstreamVerifiedGate,
    coordinator_workflow_id,
    promotion_workflow_id,
    ring_gates,
)
from definitions.promotion_runs import (
    FINAL_STATES,
    CalendarChange,
    CoordinatorRun,
    CoordinatorState,
    ExternalAlert,
    FlagApply,
    FlagApplyResult,
    FlagChange,
    FlagRestore,
    GateOverride,
    GateRef,
    GateStatus,
    Measurement,
    NextAllowed,
    NextAllowedResult,
    OperatorAction,
    Override,
    ProbeRequest,
    ProbeResult,
    PromotionOutcome,
    PromotionRequest,
    PromotionStatus,
    PromQuery,
    PromResult,
    RegisterReply,
    RegisterRequest,
    RingAttempt,
    RingGrant,
    RingLockRequest,
    RingReport,
    RingState,
    RunFinished,
    RunState,
    StageDeploy,
    StageDeployResult,
    Superseded,
    TargetStatus,
    TestPoll,
    TestPollResult,
    TestResult,
    TestTrigger,
    Vote,
)
from definitions.runs import ApprovalDecision, ApprovalState
from workflows.freeze_guard import FREEZE_PATCH, hold_while_frozen

QUERY_TIMEOUT = timedelta(seconds=30)
ONE_ATTEMPT = RetryPolicy(maximum_attempts=1)
DEPLOY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                           maximum_attempts=5,
                           non_retryable_error_types=["StageNotReady", "StageDeployFailed", "StageRejected",
                                                      "StageConfigError", "StageDeleted"])
MAX_MEASUREMENTS = 20
PASSING = (GateOutcome.PASSED, GateOutcome.OVERRIDDEN)


def _cause(err: BaseException) -> str:
    cause = err.__cause__ if isinstance(err, ActivityError) and err.__cause__ else err
    return str(getattr(cause, "message", None) or cause)


def _fmt(td: timedelta) -> str:
    seconds = int(td.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@workflow.defn
class PromotionWorkflow:
    def __init__(self) -> None:
        self._req: PromotionRequest | None = None
        self._status = PromotionStatus(pipeline="", version="")
        self._audit: list[RingAttempt] = []
        self._attempts: dict[str, int] = {}
        self._gate_models: dict[tuple[str, str], Any] = {}
        self._registered: RegisterReply | None = None
        self._grants: dict[str, RingGrant] = {}
        self._superseded: Superseded | None = None
        self._abort: OperatorAction | None = None
        self._rollback: OperatorAction | None = None
        self._alert: ExternalAlert | None = None
        self._retry: set[tuple[str, str]] = set()
        self._overrides: dict[tuple[str, str], GateOverride] = {}
        self._test_results: dict[tuple[str, str], TestResult] = {}
        self._calendar_gen = 0
        self._verified_at: dict[str, Any] = {}
        self._current: RingAttempt | None = None
        self._calendars: dict[str, Any] = {}
        self._inner: dict[tuple[str, str], asyncio.Future[tuple[GateOutcome, str]]] = {}

    # --- helpers ---------------------------------------------------------------------------------

    @property
    def _p(self) -> PromotionPipeline:
        assert self._req is not None
        return self._req.promotion

    def _coordinator(self) -> workflow.ExternalWorkflowHandle[Any]:
        return workflow.get_external_workflow_handle(coordinator_workflow_id(self._p.name))

    async def _tell(self, signal: str, arg: Any) -> None:
        try:
            await self._coordinator().signal(signal, arg)
        except Exception as exc:  # a missing coordinator must not fail the rollout's bookkeeping
            workflow.logger.warning("signal %s to the coordinator failed: %s", signal, exc)

    def _halt(self) -> RunState | None:
        if self._superseded is not None:
            return RunState.SUPERSEDED
        if self._abort is not None:
            return RunState.ABORTED
        if self._rollback is not None:
            return RunState.ROLLED_BACK
        return None

    def _vector(self, version: str) -> dict[str, Any]:
        artifact = self._p.spec.artifact
        return {"component": artifact.component, "version": version, "repository": artifact.repository}

    async def _pause_point(self) -> None:
        if self._status.paused:
            self._status.state = RunState.PAUSED
            await workflow.wait_condition(lambda: not self._status.paused or self._halt() is not None)
            if self._halt() is None:
                self._status.state = RunState.RUNNING

    # --- run -------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: PromotionRequest) -> PromotionOutcome:
        self._req = request
        p = request.promotion
        info = workflow.info()
        self._status = PromotionStatus(pipeline=p.name, version=request.version, workflow_id=info.workflow_id,
                                       requested_by=request.requested_by, override_reason=request.override_reason,
                                       rings=[RingAttempt(ring=r.name, attempt=0, version=request.version,
                                                          sequence=0, pending="waiting for the rings before it")
                                              for r in p.spec.rings])
        self._calendars = dict(p.spec.calendars)
        for ring in p.spec.rings:
            for _, name, gate in ring_gates(ring):
                self._gate_models[(ring.name, name)] = gate
        try:
            await workflow.execute_activity("konfidence.validate", request, start_to_close_timeout=QUERY_TIMEOUT,
                                            retry_policy=RetryPolicy(maximum_attempts=3,
                                                                     non_retryable_error_types=["PromotionInvalid"]))
        except ActivityError as exc:
            raise ApplicationError(_cause(exc), type="PromotionInvalid", non_retryable=True) from None
        self._status.state = RunState.QUEUED
        self._status.message = "registering with the coordinator"
        await workflow.execute_activity(
            "konfidence.register",
            RegisterRequest(pipeline=p.name, version=request.version, workflow_id=info.workflow_id,
                            override_reason=request.override_reason, requested_by=request.requested_by,
                            supersede=p.spec.version_policy.supersede, block_failed=p.spec.version_policy.block_failed),
            start_to_close_timeout=QUERY_TIMEOUT)
        await workflow.wait_condition(lambda: self._registered is not None)
        assert self._registered is not None
        self._status.sequence = self._registered.sequence
        if self._registered.blocked:
            self._status.state = RunState.BLOCKED
            self._status.message = (f"version {request.version} is blocked: {self._registered.reason}; start it "
                                    "again with an override reason to promote it anyway")
            return self._finish_outcome()
        self._status.state = RunState.RUNNING
        self._status.message = ""
        final = RunState.SUCCEEDED
        for index, ring in enumerate(p.spec.rings):
            final = await self._run_ring(index, ring)
            if final is not RunState.SUCCEEDED:
                break
        halted = self._halt()
        self._status.state = halted if (halted and final is RunState.SUCCEEDED and
                                        halted is not RunState.ROLLED_BACK) else final
        for ring_status in self._status.rings:
            if ring_status.state is RingState.PENDING:
                ring_status.state = RingState.STOPPED
                ring_status.pending = f"not started: the run ended {self._status.state.value}"
        await self._tell("finished", RunFinished(workflow_id=info.workflow_id, version=request.version,
                                                 state=self._status.state))
        return self._finish_outcome()

    def _finish_outcome(self) -> PromotionOutcome:
        return PromotionOutcome(status=self._status, audit=list(self._audit))

    # --- one ring --------------------------------------------------------------------------------

    async def _run_ring(self, index: int, ring: Ring) -> RunState:
        assert self._req is not None
        number = self._attempts.get(ring.name, 0) + 1
        self._attempts[ring.name] = number
        att = RingAttempt(ring=ring.name, attempt=number, version=self._req.version, sequence=self._status.sequence,
                          started_at=workflow.now(),
                          targets=[TargetStatus(stage=f"{t.namespace}/{t.stage}") for t in ring.targets],
                          gates=[GateStatus(name=name, type=gate.type, phase=phase,
                                            needed=gate.quorum if isinstance(gate, ApprovalGate) else 0)
                                 for phase, name, gate in ring_gates(ring)])
        self._status.rings[index] = att
        self._current = att
        try:
            return await self._ring_phases(index, ring, att)
        finally:
            att.finished_at = workflow.now()
            att.pending = ""
            self._audit.append(att.model_copy(deep=True))  # the immutable record of this attempt
            self._current = None

    async def _ring_phases(self, index: int, ring: Ring, att: RingAttempt) -> RunState:
        assert self._req is not None
        wf_id = workflow.info().workflow_id
        # 1. the ring lock
        att.state = RingState.WAITING_LOCK
        att.pending = "waiting for the coordinator to hand over the ring (one promotion per ring at a time)"
        await self._tell("acquire", RingLockRequest(ring=ring.name, workflow_id=wf_id, sequence=self._status.sequence))
        await workflow.wait_condition(lambda: ring.name in self._grants or self._halt() is not None)
        if self._halt() is not None:
            return self._stopped(att, "stopped while waiting for the ring")
        grant = self._grants[ring.name]
        att.rollback_to = grant.last_verified
        report = RingReport(ring=ring.name, version=self._req.version, workflow_id=wf_id)
        try:
            for up in self._p.upstream_of(index):
                if up not in self._verified_at:
                    att.state = RingState.FAILED
                    att.reason = f"upstream ring {up} is not verified"
                    return RunState.FAILED
            # 2. entry gates
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
            await self._pause_point()
            if self._halt() is not None:
                return self._stopped(att, f"stopped before deploying: {self._halt_text()}")
            if workflow.patched(FREEZE_PATCH):
                await self._freeze_point(ring, att)
                if self._halt() is not None:
                    return self._stopped(att, f"stopped while frozen: {self._halt_text()}")
            att.state = RingState.DEPLOYING
            deploy_error = await self._apply_flags(ring, att) or await self._deploy(ring, att)
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
                await self._roll_back(ring, att, f"rollback requested by {self._rollback.by or 'an operator'}: "
                                                 f"{self._rollback.reason}")
                return RunState.ROLLED_BACK
            if halted is not None:
                return self._stopped(att, f"stopped during verification: {self._halt_text()}")
            return await self._fail_ring(ring, att, report, reason)
        finally:
            await self._tell("release", report)

    async def _freeze_point(self, ring: Ring, att: RingAttempt) -> None:
        """A landscape-wide freeze holds the ring before it deploys; `pending` and the status message
        say "frozen by X since T: reason" (or the exemption it proceeds under)."""
        assert self._req is not None

        def report(message: str) -> None:
            att.pending = message
            self._status.message = message

        verdict = await hold_while_frozen(f"deploy {self._req.version} to ring {ring.name}", report)
        if not verdict.frozen:
            att.pending = ""

    def _halt_text(self) -> str:
        if self._superseded is not None:
            return f"superseded by version {self._superseded.by_version} (#{self._superseded.by_sequence})"
        if self._abort is not None:
            return f"aborted by {self._abort.by or 'an operator'}" + (f": {self._abort.reason}" if self._abort.reason
                                                                      else "")
        if self._rollback is not None:
            return f"rollback requested by {self._rollback.by or 'an operator'}"
        return ""

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
        await self._roll_back(ring, att, reason)
        att.state = RingState.FAILED if att.state is not RingState.ROLLED_BACK else att.state
        return RunState.FAILED

    # --- deployment, flags, rollback ------------------------------------------------------------

    async def _deploy_targets(self, ring: Ring, att: RingAttempt, vector: dict[str, Any]) -> list[str]:
        sem = asyncio.Semaphore(ring.parallelism)
        timeout = ring.ready_timeout

        async def one(i: int) -> str | None:
            target, ts = ring.targets[i], att.targets[i]
            async with sem:
                ts.message = f"deploying {vector['version']}"
                try:
                    res = await workflow.execute_activity(
                        "konfidence.deploy_stage",
                        StageDeploy(target=target, vector=vector, ready_timeout_seconds=timeout.total_seconds()),
                        result_type=StageDeployResult, start_to_close_timeout=timeout + timedelta(minutes=2),
                        heartbeat_timeout=timedelta(seconds=60), retry_policy=DEPLOY_RETRY)
                except ActivityError as exc:
                    ts.message = _cause(exc)
                    return f"{ts.stage}: {ts.message}"
                if ts.previous_vector is None and not ts.deployed:
                    ts.previous_vector = res.previous_vector
                ts.deployed = True
                ts.message = res.message
                return None

        results = await asyncio.gather(*(one(i) for i in range(len(ring.targets))))
        return [r for r in results if r]

    async def _deploy(self, ring: Ring, att: RingAttempt) -> str:
        assert self._req is not None
        att.pending = f"deploying {self._req.version} to {len(ring.targets)} Stage(s), {ring.parallelism} at a time"
        errors = await self._deploy_targets(ring, att, self._vector(self._req.version))
        return "; ".join(errors)

    async def _apply_flags(self, ring: Ring, att: RingAttempt) -> str:
        if ring.flags is None or not ring.flags.actions:
            return ""
        assert self._req is not None
        try:
            res = await workflow.execute_activity(
                "konfidence.apply_flags", FlagApply(flags=ring.flags, ring=ring.name, version=self._req.version),
                result_type=FlagApplyResult, start_to_close_timeout=QUERY_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["FlagFileInvalid",
                                                                                         "FlagActionInvalid"]))
        except ActivityError as exc:
            return f"flags: {_cause(exc)}"
        att.flag_changes.append(FlagChange(path=res.path, changed=res.changed, before=res.before))
        return ""

    async def _roll_back(self, ring: Ring, att: RingAttempt, reason: str) -> None:
        """Back to the ring's last verified version; a failing rollback is reported, never rolled back."""
        att.state = RingState.ROLLING_BACK
        for change in att.flag_changes:
            try:
                await workflow.execute_activity("konfidence.restore_flags",
                                                FlagRestore(path=change.path, before=change.before),
                                                start_to_close_timeout=QUERY_TIMEOUT)
                change.reverted = True
            except ActivityError as exc:
                att.reason = f"{reason}; reverting flags in {change.path} failed: {_cause(exc)}"
        touched = [i for i, t in enumerate(att.targets) if t.deployed or t.message]
        if not touched:
            att.state = RingState.FAILED
            att.reason = f"{reason}; nothing was deployed, nothing to roll back"
            return
        target_version = att.rollback_to
        if target_version is None:
            previous = {str((t.previous_vector or {}).get("version")) for t in att.targets if t.previous_vector}
            if len(previous) == 1:
                target_version = previous.pop()
        if target_version is None:
            att.state = RingState.FAILED
            att.reason = f"{reason}; no verified version to roll back to (first promotion of this ring)"
            return
        att.rollback_to = target_version
        sub = ring.model_copy(update={"targets": [ring.targets[i] for i in touched]})
        shadow = att.model_copy(deep=True, update={"targets": [att.targets[i].model_copy() for i in touched]})
        errors = await self._deploy_targets(sub, shadow, self._vector(target_version))
        if errors:
            att.state = RingState.FAILED
            att.reason = (f"{reason}; rollback to {target_version} failed ({'; '.join(errors)}); not retried: a "
                          "rollback is never rolled back, fix the Stages by hand")
            return
        att.state = RingState.ROLLED_BACK
        att.reason = f"{reason}; rolled back to {target_version}"

    # --- gates -----------------------------------------------------------------------------------

    async def _gates(self, att: RingAttempt, phase: str) -> tuple[GateOutcome, str]:
        gates = [g for g in att.gates if g.phase == phase]
        if not gates:
            return GateOutcome.PASSED, "no gates"
        tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._gate(att, gs)) for gs in gates]

        def failing() -> bool:
            return any(g.outcome is not None and g.outcome not in PASSING and g.state == "Done" for g in gates)

        def alerted() -> bool:
            return phase == "verify" and self._alert is not None and self._alert.ring in (None, att.ring)

        await workflow.wait_condition(lambda: all(t.done() for t in tasks) or failing() or alerted()
                                      or self._halt() is not None)
        for t in tasks:
            if not t.done():
                t.cancel()
        for g in gates:
            inner = self._inner.pop((att.ring, g.name), None)
            if inner is not None and not inner.done():
                inner.cancel()
                tasks.append(inner)
        await asyncio.gather(*tasks, return_exceptions=True)
        for g in gates:
            if g.state != "Done":
                g.state = "Done"
                g.reason = f"cancelled before it decided (was: {g.reason})" if g.reason else "cancelled"
                g.next_check = None
                g.finished_at = workflow.now()
        if alerted():
            assert self._alert is not None
            return GateOutcome.FAILED, f"external alert from {self._alert.source}: {self._alert.message}"
        if self._halt() is not None:
            return GateOutcome.ERROR, self._halt_text()
        bad = [g for g in gates if g.outcome is not None and g.outcome not in PASSING]
        bad = bad or [g for g in gates if g.outcome not in PASSING]
        if bad:
            return bad[0].outcome or GateOutcome.ERROR, f"{bad[0].name}: {bad[0].outcome}: {bad[0].reason}"
        return GateOutcome.PASSED, ", ".join(f"{g.name} {g.outcome}" for g in gates)

    def _settle(self, gs: GateStatus, outcome: GateOutcome, reason: str) -> GateOutcome:
        gs.outcome = outcome
        gs.reason = reason
        gs.state = "Done"
        gs.next_check = None
        gs.finished_at = workflow.now()
        return outcome

    async def _gate(self, att: RingAttempt, gs: GateStatus) -> GateOutcome:
        key = (att.ring, gs.name)
        gate = self._gate_models[key]
        defaults = self._p.spec.defaults
        gs.started_at = workflow.now()
        timeout = gate.timeout or defaults.gate_timeout
        deadline = workflow.now() + timeout
        retries = defaults.error_retries
        backoff = defaults.error_backoff
        ring = self._p.ring(att.ring)
        while True:
            await self._pause_point()
            if key in self._overrides:
                o = self._overrides[key]
                return self._settle(gs, GateOutcome.OVERRIDDEN, f"overridden by {o.by}: {o.reason}")
            gs.state = "Running"
            gs.outcome = None
            self._retry.discard(key)
            inner = asyncio.ensure_future(self._evaluate(att, gs, gate))
            self._inner[key] = inner
            try:
                await workflow.wait_condition(lambda inner=inner: inner.done() or key in self._overrides,  # type: ignore[misc]
                                              timeout=max(deadline - workflow.now(), timedelta(seconds=1)))
            except TimeoutError:
                pass
            if not inner.done():
                inner.cancel()
                await asyncio.gather(inner, return_exceptions=True)
                if key in self._overrides:
                    continue
                return self._settle(gs, GateOutcome.TIMED_OUT, f"no result within {_fmt(timeout)}")
            outcome, reason = inner.result()
            if outcome is GateOutcome.ERROR and retries > 0:
                retries -= 1
                gs.state = "Waiting"
                gs.outcome = GateOutcome.ERROR
                gs.next_check = workflow.now() + backoff
                gs.reason = f"{reason}; retrying in {_fmt(backoff)} ({retries} retries left)"
                try:
                    await workflow.wait_condition(lambda: key in self._retry or key in self._overrides,
                                                  timeout=backoff)
                except TimeoutError:
                    pass
                backoff = backoff * 2
                continue
            if outcome is GateOutcome.INCONCLUSIVE or (outcome is GateOutcome.ERROR and not ring.rollback_on_error):
                gs.state = "Paused"
                gs.outcome = outcome
                gs.next_check = None
                gs.reason = f"{reason}; paused for a person: retry the gate, override it, roll back or abort"
                await workflow.wait_condition(lambda: key in self._retry or key in self._overrides)
                retries = defaults.error_retries
                backoff = defaults.error_backoff
                deadline = workflow.now() + timeout
                continue
            return self._settle(gs, outcome, reason)

    def _measure(self, gs: GateStatus, outcome: str, value: float | None = None, detail: str = "") -> None:
        gs.measurements.append(Measurement(at=workflow.now(), value=value, outcome=outcome, detail=detail))
        del gs.measurements[:-MAX_MEASUREMENTS]

    async def _evaluate(self, att: RingAttempt, gs: GateStatus, gate: Any) -> tuple[GateOutcome, str]:
        if isinstance(gate, SoakGate):
            gs.state = "Waiting"
            gs.next_check = workflow.now() + gate.duration
            gs.reason = f"soaking {_fmt(gate.duration)} until {gs.next_check:%Y-%m-%d %H:%M:%S}Z"
            await workflow.sleep(gate.duration)
            return GateOutcome.PASSED, f"soaked {_fmt(gate.duration)}"
        if isinstance(gate, PrometheusGate):
            return await self._prometheus(gs, gate)
        if isinstance(gate, HttpProbeGate):
            return await self._http_probe(gs, gate)
        if isinstance(gate, ApprovalGate):
            return await self._approval(gs, gate)
        if isinstance(gate, TimeWindowGate):
            return await self._time_window(gs, gate)
        if isinstance(gate, TestSuiteGate):
            return await self._test_suite(att, gs, gate)
        if isinstance(gate, UpstreamVerifiedGate):
            return await self._upstream(gs, gate)
        return GateOutcome.ERROR, f"gate type {gate.type!r} is not implemented by this worker"

    async def _prometheus(self, gs: GateStatus, gate: PrometheusGate) -> tuple[GateOutcome, str]:
        address = gate.address or self._p.spec.defaults.prometheus or ""
        failures = errors = taken = 0
        while taken < gate.count:
            gs.state = "Running"
            gs.reason = f"measuring ({taken}/{gate.count} taken, {failures} failed)"
            res = await workflow.execute_activity("konfidence.prometheus_query", PromQuery(address=address,
                                                                                          query=gate.query),
                                                  result_type=PromResult, start_to_close_timeout=QUERY_TIMEOUT,
                                                  retry_policy=ONE_ATTEMPT)
            if not res.ok:
                errors += 1
                self._measure(gs, "Error", detail=res.error)
                if errors >= gate.consecutive_error_limit:
                    return GateOutcome.ERROR, (f"{errors} consecutive query errors (limit "
                                               f"{gate.consecutive_error_limit}); last: {res.error}")
            else:
                errors = 0
                taken += 1
                if res.value is None:
                    self._measure(gs, "NoData", detail=f"no data; noData={gate.no_data}")
                    if gate.no_data == "inconclusive":
                        return GateOutcome.INCONCLUSIVE, "the query returned no data"
                    if gate.no_data == "error":
                        return GateOutcome.ERROR, "the query returned no data"
                    if gate.no_data == "fail":
                        failures += 1
                else:
                    try:
                        good = evaluate_bool(gate.success_condition, {"result": res.value})
                    except ExpressionError as exc:
                        return GateOutcome.ERROR, f"successCondition: {exc}"
                    self._measure(gs, "Passed" if good else "Failed", res.value)
                    if not good:
                        failures += 1
                if failures > gate.failure_limit:
                    return GateOutcome.FAILED, (f"`{gate.success_condition}` false with result={res.value} "
                                                f"({failures} of {taken} measurements failed, limit "
                                                f"{gate.failure_limit})")
            if taken < gate.count:
                gs.state = "Waiting"
                gs.next_check = workflow.now() + gate.interval
                await workflow.sleep(gate.interval)
                gs.next_check = None
        return GateOutcome.PASSED, f"{taken} measurements, {failures} failed (limit {gate.failure_limit})"

    async def _http_probe(self, gs: GateStatus, gate: HttpProbeGate) -> tuple[GateOutcome, str]:
        successes = failures = errors = 0
        while True:
            res = await workflow.execute_activity("konfidence.http_probe", ProbeRequest(url=gate.url),
                                                  result_type=ProbeResult, start_to_close_timeout=QUERY_TIMEOUT,
                                                  retry_policy=ONE_ATTEMPT)
            if not res.ok:
                errors += 1
                self._measure(gs, "Error", detail=res.error)
                if errors >= 3:
                    return GateOutcome.ERROR, f"{errors} probes in a row could not connect; last: {res.error}"
            else:
                errors = 0
                good = res.status in gate.expect_status
                detail = f"HTTP {res.status}"
                if good and gate.condition:
                    try:
                        good = evaluate_bool(gate.condition, {"body": res.body, "status": res.status})
                    except ExpressionError as exc:
                        good, detail = False, f"{detail}; condition: {exc}"
                self._measure(gs, "Passed" if good else "Failed", float(res.status), detail)
                if good:
                    successes += 1
                else:
                    successes = 0
                    failures += 1
                if failures > gate.failure_limit:
                    return GateOutcome.FAILED, f"{failures} failed probes of {gate.url} (limit {gate.failure_limit})"
                if successes >= gate.consecutive_successes:
                    return GateOutcome.PASSED, f"{successes} consecutive successful probes"
            gs.state = "Waiting"
            gs.next_check = workflow.now() + gate.interval
            gs.reason = f"{successes}/{gate.consecutive_successes} consecutive successes, {failures} failures"
            await workflow.sleep(gate.interval)

    def _decision(self, gs: GateStatus) -> bool | None:
        if any(not v.approve for v in gs.votes):
            return False
        if sum(1 for v in gs.votes if v.approve) >= max(gs.needed, 1):
            return True
        return None

    async def _approval(self, gs: GateStatus, gate: ApprovalGate) -> tuple[GateOutcome, str]:
        gs.state = "Waiting"
        who = ", ".join(gate.approvers) if gate.approvers else "anyone"
        gs.reason = f"waiting for approval ({gate.quorum} needed, from {who}): {gate.message}"
        await workflow.wait_condition(lambda: self._decision(gs) is not None)
        if self._decision(gs) is False:
            v = next(v for v in gs.votes if not v.approve)
            return GateOutcome.FAILED, f"rejected by {v.approver}" + (f": {v.comment}" if v.comment else "")
        return GateOutcome.PASSED, "approved by " + ", ".join(v.approver for v in gs.votes if v.approve)

    async def _time_window(self, gs: GateStatus, gate: TimeWindowGate) -> tuple[GateOutcome, str]:
        while True:
            generation = self._calendar_gen
            res = await workflow.execute_activity(
                "konfidence.next_allowed", NextAllowed(calendar=self._calendars[gate.calendar], after=workflow.now()),
                result_type=NextAllowedResult, start_to_close_timeout=QUERY_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["CalendarClosed",
                                                                                        "CalendarInvalid"]))
            now = workflow.now()
            if res.at <= now:
                return GateOutcome.PASSED, f"calendar {gate.calendar!r} allows this instant"
            gs.state = "Waiting"
            gs.next_check = res.at
            gs.reason = f"calendar {gate.calendar!r}: {res.reason}; next allowed {res.at:%Y-%m-%d %H:%M}Z"
            try:
                await workflow.wait_condition(lambda g=generation: self._calendar_gen != g,  # type: ignore[misc]
                                              timeout=res.at - now)
            except TimeoutError:
                pass

    async def _test_suite(self, att: RingAttempt, gs: GateStatus, gate: TestSuiteGate) -> tuple[GateOutcome, str]:
        assert self._req is not None
        key = (att.ring, gs.name)
        self._test_results.pop(key, None)
        await workflow.execute_activity(
            "konfidence.trigger_tests",
            TestTrigger(url=gate.url, pipeline=self._p.name, version=self._req.version, ring=att.ring, gate=gs.name,
                        workflow_id=workflow.info().workflow_id),
            start_to_close_timeout=QUERY_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=5, non_retryable_error_types=["TestTrigger"]))
        gs.state = "Waiting"
        gs.reason = "test suite triggered; waiting for its result"
        while key not in self._test_results:
            gs.next_check = workflow.now() + gate.interval if gate.result_url else None
            try:
                await workflow.wait_condition(lambda: key in self._test_results,
                                              timeout=gate.interval if gate.result_url else None)
            except TimeoutError:
                res = await workflow.execute_activity("konfidence.poll_tests", TestPoll(url=gate.result_url or ""),
                                                      result_type=TestPollResult,
                                                      start_to_close_timeout=QUERY_TIMEOUT)
                if res.finished:
                    self._test_results[key] = TestResult(ring=att.ring, gate=gs.name, passed=res.passed,
                                                         detail=res.detail)
        result = self._test_results[key]
        self._measure(gs, "Passed" if result.passed else "Failed", detail=result.detail)
        if result.passed:
            return GateOutcome.PASSED, f"tests passed {result.detail}".strip()
        return GateOutcome.FAILED, f"tests failed: {result.detail}".strip(": ")

    async def _upstream(self, gs: GateStatus, gate: UpstreamVerifiedGate) -> tuple[GateOutcome, str]:
        missing = [r for r in gate.rings if r not in self._verified_at]
        if missing:
            return GateOutcome.FAILED, f"not verified in {', '.join(missing)}"
        if gate.min_soak:
            ready = max(self._verified_at[r] for r in gate.rings) + gate.min_soak
            if ready > workflow.now():
                gs.state = "Waiting"
                gs.next_check = ready
                gs.reason = f"verified upstream; soaking there until {ready:%H:%M:%S}Z"
                await workflow.sleep(ready - workflow.now())
        return GateOutcome.PASSED, f"verified in {', '.join(gate.rings)}"

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

    # --- operator updates and signals ------------------------------------------------------------

    def _find_gate(self, ref: str, want_type: str | None = None) -> GateStatus:
        att = self._current
        ring, _, gate = ref.rpartition("/")
        if att is None or (ring and ring != att.ring):
            raise ValueError(f"{ref!r}: no such gate in the ring being promoted "
                             f"({att.ring if att else 'none'})")
        for gs in att.gates:
            if gs.name == gate and (want_type is None or gs.type == want_type):
                return gs
        names = ", ".join(f"{att.ring}/{g.name}" for g in att.gates)
        raise ValueError(f"{ref!r}: no such gate in ring {att.ring}; gates: {names}")

    def _check_open(self) -> None:
        if self._superseded is not None:
            raise ValueError(f"version {self._status.version} was superseded by {self._superseded.by_version}; "
                             "approvals for it are closed")
        if self._status.state in FINAL_STATES or self._halt() is not None:
            raise ValueError(f"the promotion of {self._status.version} is {self._status.state.value}; "
                             "nothing to decide")

    @workflow.update
    def approve(self, decision: ApprovalDecision) -> ApprovalState:
        """Engine-compatible: ``step`` is ``ring/gate`` (or the gate name in the current ring)."""
        return self._vote(decision)

    def _vote(self, decision: ApprovalDecision) -> ApprovalState:
        gs = self._find_gate(decision.step, "approval")
        gs.votes.append(Vote(approver=decision.approver, approve=decision.approve, comment=decision.comment,
                             at=workflow.now()))
        verdict = self._decision(gs)
        return ApprovalState(step=decision.step, approvals=sum(1 for v in gs.votes if v.approve), needed=gs.needed,
                             decided=verdict is not None, approved=verdict)

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        self._check_open()
        gs = self._find_gate(decision.step, "approval")
        if gs.state != "Waiting" or self._decision(gs) is not None:
            raise ValueError(f"gate {decision.step!r} is not waiting for approval (state {gs.state})")
        assert self._current is not None
        gate = self._gate_models[(self._current.ring, gs.name)]
        if gate.approvers and decision.approver not in gate.approvers:
            raise ValueError(f"{decision.approver!r} may not approve {decision.step!r}; eligible: "
                             f"{', '.join(gate.approvers)}")
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
        self._current.overrides.append(Override(gate=gs.name, by=override.by, reason=override.reason,
                                                at=workflow.now()))
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
            pending = [f"{g.name}: {g.reason}" + (f" (next check {g.next_check:%H:%M:%S}Z)" if g.next_check else "")
                       for g in att.gates if g.state != "Done" and g.phase in ("entry" if att.state is
                                                                             RingState.ENTRY_GATES else "verify",)]
            if pending and att.state in (RingState.ENTRY_GATES, RingState.VERIFYING):
                att.pending = "; ".join(pending)
        status.waiting_approvals = waiting
        return status

    @workflow.query
    def audit(self) -> list[RingAttempt]:
        return list(self._audit)


@workflow.defn
class PromotionCoordinatorWorkflow:
    """Numbers versions, hands out rings one run at a time, supersedes, blocks failed versions."""

    def __init__(self) -> None:
        self._state = CoordinatorState(pipeline="")
        self._inbox: list[tuple[str, Any]] = []

    @workflow.run
    async def run(self, state: CoordinatorState) -> None:
        self._state = state
        idle = 0
        while True:
            # A daily wake-up keeps the coordinator from looking idle forever: a time-skipping test server
            # would otherwise jump to its default execution timeout and lose the state (blocked versions).
            try:
                await workflow.wait_condition(
                    lambda: bool(self._inbox) or workflow.info().is_continue_as_new_suggested(),
                    timeout=timedelta(days=1))
            except TimeoutError:
                idle += 1
                if idle >= 90:
                    workflow.continue_as_new(self._state)
                continue
            while self._inbox:
                kind, arg = self._inbox.pop(0)
                await self._handle(kind, arg)
            if workflow.info().is_continue_as_new_suggested() and not self._inbox:
                workflow.continue_as_new(self._state)

    async def _send(self, workflow_id: str, signal: str, arg: Any) -> None:
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal(signal, arg)
        except Exception as exc:
            workflow.logger.warning("signal %s to %s failed: %s", signal, workflow_id, exc)

    def _run(self, workflow_id: str) -> CoordinatorRun | None:
        return next((r for r in reversed(self._state.runs) if r.workflow_id == workflow_id), None)

    async def _handle(self, kind: str, arg: Any) -> None:
        s = self._state
        if kind == "register":
            req: RegisterRequest = arg
            if req.block_failed and req.version in s.blocked and not req.override_reason:
                await self._send(req.workflow_id, "registered",
                                 RegisterReply(sequence=0, blocked=True, reason=s.blocked[req.version]))
                return
            s.blocked.pop(req.version, None)
            seq = s.next_sequence
            s.next_sequence += 1
            if req.supersede:
                for run in s.runs:
                    if run.state == "Running" and run.sequence < seq:
                        run.state = "Superseded"
                        await self._send(run.workflow_id, "superseded", Superseded(by_version=req.version,
                                                                                   by_sequence=seq))
                        await self._release_all(run.workflow_id)
            s.runs.append(CoordinatorRun(version=req.version, sequence=seq, workflow_id=req.workflow_id,
                                         override_reason=req.override_reason))
            del s.runs[:-200]
            await self._send(req.workflow_id, "registered", RegisterReply(sequence=seq))
        elif kind == "acquire":
            lock: RingLockRequest = arg
            current = self._run(lock.workflow_id)
            if current is None or current.state != "Running":
                return
            holder = s.holders.get(lock.ring)
            if holder in (None, lock.workflow_id):
                await self._grant(lock.ring, lock.workflow_id)
            else:
                queue = s.waiting.setdefault(lock.ring, [])
                queue.append(lock)
                queue.sort(key=lambda r: r.sequence)
        elif kind in ("release", "verified", "failed"):
            rep: RingReport = arg
            if kind == "verified":
                s.last_verified[rep.ring] = rep.version
            if kind == "failed":
                s.blocked[rep.version] = f"failed ring {rep.ring}: {rep.reason}"
            await self._release(rep.ring, rep.workflow_id)
        elif kind == "finished":
            fin: RunFinished = arg
            done = self._run(fin.workflow_id)
            if done is not None:
                done.state = fin.state.value
            await self._release_all(fin.workflow_id)

    async def _grant(self, ring: str, workflow_id: str) -> None:
        self._state.holders[ring] = workflow_id
        grant = RingGrant(ring=ring, last_verified=self._state.last_verified.get(ring))
        await self._send(workflow_id, "granted", grant)

    async def _release(self, ring: str, workflow_id: str) -> None:
        s = self._state
        if s.holders.get(ring) == workflow_id:
            del s.holders[ring]
        s.waiting[ring] = [w for w in s.waiting.get(ring, []) if w.workflow_id != workflow_id]
        while ring not in s.holders and s.waiting.get(ring):
            nxt = s.waiting[ring].pop(0)
            run = self._run(nxt.workflow_id)
            if run is not None and run.state == "Running":
                await self._grant(ring, nxt.workflow_id)

    async def _release_all(self, workflow_id: str) -> None:
        for ring in [r for r, w in self._state.holders.items() if w == workflow_id]:
            await self._release(ring, workflow_id)
        for ring in list(self._state.waiting):
            self._state.waiting[ring] = [w for w in self._state.waiting[ring] if w.workflow_id != workflow_id]

    @workflow.signal
    def register(self, req: RegisterRequest) -> None:
        if not self._state.pipeline:
            self._state.pipeline = req.pipeline
        self._inbox.append(("register", req))

    @workflow.signal
    def acquire(self, req: RingLockRequest) -> None:
        self._inbox.append(("acquire", req))

    @workflow.signal
    def release(self, rep: RingReport) -> None:
        self._inbox.append(("release", rep))

    @workflow.signal
    def verified(self, rep: RingReport) -> None:
        self._inbox.append(("verified", rep))

    @workflow.signal
    def failed(self, rep: RingReport) -> None:
        self._inbox.append(("failed", rep))

    @workflow.signal
    def finished(self, fin: RunFinished) -> None:
        self._inbox.append(("finished", fin))

    @workflow.query
    def state(self) -> CoordinatorState:
        return self._state


@workflow.defn
class PromotionStepWorkflow:
    """The ``promotion.run`` step: the promotion as a child with the deterministic id; fails unless it
    succeeded, so the pipeline stops on a failed, rolled back or superseded promotion."""

    @workflow.run
    async def run(self, args: PromotionRunArgs) -> PromotionResult:
        name = args.promotion.name
        out: PromotionOutcome = await workflow.execute_child_workflow(
            PromotionWorkflow.run,
            PromotionRequest(promotion=args.promotion, version=args.version, requested_by=args.requested_by,
                             override_reason=args.override_reason),
            id=promotion_workflow_id(name, args.version), task_queue=queues.KONFIDENCE)
        st = out.status
        result = PromotionResult(pipeline=name, version=args.version, sequence=st.sequence, state=st.state.value,
                                 workflow_id=st.workflow_id, message=st.message,
                                 rings=[RingResult(ring=r.ring, state=r.state.value, attempts=r.attempt)
                                        for r in st.rings])
        if st.state is not RunState.SUCCEEDED:
            raise ApplicationError(f"promotion of {args.version} ended {st.state.value}: {st.message}",
                                   result.model_dump(mode="json"), type="PromotionNotSucceeded", non_retryable=True)
        return result


WORKFLOWS = [PromotionWorkflow, PromotionCoordinatorWorkflow, PromotionStepWorkflow]
