"""Running a ring's gates: all of a phase at once, each under the same rules whatever its type.

Per gate: an override ends it (Overridden); the evaluator (``gates/``) decides; no decision within the
gate's timeout is TimedOut; Error is retried with doubling backoff, then, like Inconclusive, pauses
the gate for a person (retry, override, roll back, abort), unless the ring rolls back on Error. Per
phase: the first failing gate, an external alert (verify only) or an operator halt ends the others.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow

from definitions.promotion import GateOutcome
from definitions.promotion_runs import GateProgress, GateStatus, RingAttempt
from workflows.promotion.gates import evaluators
from workflows.promotion.gates.base import fmt_duration
from workflows.promotion.gates.temporal import TemporalGateContext, finish_or_cancel
from workflows.promotion.state import PASSING, ContinueAsNew, PromotionState


class GateRunner(PromotionState):
    async def _gates(self, att: RingAttempt, phase: str) -> tuple[GateOutcome, str]:
        gates = [g for g in att.gates if g.phase == phase]
        if not gates:
            return GateOutcome.PASSED, "no gates"
        # (A continued run starts only the gates that had not decided.)
        tasks: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._gate(att, gs)) for gs in gates if gs.state != "Done"
        ]

        def failing() -> bool:
            return any(g.outcome is not None and g.outcome not in PASSING and g.state == "Done" for g in gates)

        def alerted() -> bool:
            return phase == "verify" and self._alert is not None and self._alert.ring in (None, att.ring)

        def decided() -> bool:
            return all(t.done() for t in tasks) or failing() or alerted() or self._halt() is not None

        continuing = False
        while not continuing:
            # The history bound counts only at a safe point: no gate activity in flight, so every gate
            # waits on a timer or a person and its progress says how to resume.
            await workflow.wait_condition(lambda: decided() or (self._history_full() and self._in_flight == 0))
            if decided():
                break
            continuing = self._continue_now()
        for t in tasks:
            if not t.done():
                t.cancel()
        for g in gates:
            inner = self._inner.pop((att.ring, g.name), None)
            if inner is not None and not inner.done():
                inner.cancel()
                tasks.append(inner)
        await asyncio.gather(*tasks, return_exceptions=True)
        if continuing:
            raise ContinueAsNew(phase)
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
        timeout = gate.timeout or defaults.gate_timeout
        # Deadline, Error retries and backoff live in the gate's progress, so a continued run (the
        # progress carried) resumes the gate where it was: evaluating, in backoff or paused.
        prog = self._progress.get(key)
        resumed = prog is not None
        if prog is None:
            gs.started_at = workflow.now()
            prog = self._progress[key] = GateProgress(
                ring=att.ring,
                gate=gs.name,
                deadline=workflow.now() + timeout,
                retries=defaults.error_retries,
                backoff=defaults.error_backoff,
            )
        ring = self._p.ring(att.ring)
        while True:
            await self._pause_point()
            if key in self._overrides:
                o = self._overrides[key]
                return self._settle(gs, GateOutcome.OVERRIDDEN, f"overridden by {o.by}: {o.reason}")
            if prog.stage == "evaluating":
                if not resumed:
                    prog.restart()
                gs.state = "Running"
                gs.outcome = None
                self._retry.discard(key)
                inner = asyncio.ensure_future(self._evaluate(att, gs, gate))
                self._inner[key] = inner
                assert prog.deadline is not None
                if not await finish_or_cancel(inner, lambda: key in self._overrides, prog.deadline):
                    if key in self._overrides:
                        continue
                    return self._settle(gs, GateOutcome.TIMED_OUT, f"no result within {fmt_duration(timeout)}")
                outcome, reason = inner.result()
                if outcome is GateOutcome.ERROR and prog.retries > 0:
                    prog.retries -= 1
                    prog.stage = "backoff"
                    gs.state = "Waiting"
                    gs.outcome = GateOutcome.ERROR
                    gs.next_check = workflow.now() + prog.backoff
                    gs.reason = (
                        f"{reason}; retrying in {fmt_duration(prog.backoff)} ({prog.retries} retries left)"
                    )
                elif outcome is GateOutcome.INCONCLUSIVE or (
                    outcome is GateOutcome.ERROR and not ring.rollback_on_error
                ):
                    prog.stage = "paused"
                    gs.state = "Paused"
                    gs.outcome = outcome
                    gs.next_check = None
                    gs.reason = f"{reason}; paused for a person: retry the gate, override it, roll back or abort"
                else:
                    return self._settle(gs, outcome, reason)
            resumed = False
            if prog.stage == "backoff":
                assert gs.next_check is not None
                left = gs.next_check - workflow.now()
                if left > timedelta(0):
                    try:
                        await workflow.wait_condition(
                            lambda: key in self._retry or key in self._overrides, timeout=left
                        )
                    except TimeoutError:
                        pass
                prog.backoff = prog.backoff * 2
            else:
                await workflow.wait_condition(lambda: key in self._retry or key in self._overrides)
                prog.retries = defaults.error_retries
                prog.backoff = defaults.error_backoff
                prog.deadline = workflow.now() + timeout
            prog.stage = "evaluating"

    async def _evaluate(self, att: RingAttempt, gs: GateStatus, gate: Any) -> tuple[GateOutcome, str]:
        evaluator = evaluators(self._p.spec.defaults).get(gate.type)
        if evaluator is None:
            return GateOutcome.ERROR, f"gate type {gate.type!r} is not implemented by this worker"
        decision = await evaluator.evaluate(gate, TemporalGateContext(self, att.ring, gs))
        return decision.outcome, decision.reason
