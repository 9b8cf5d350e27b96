"""What a promotion run remembers, shared by the ring state machine, the gate driver and the operator
handlers (they are mixins of one workflow class, so each concern reads as its own file)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow

from definitions.promotion import GateOutcome, PromotionPipeline, coordinator_workflow_id
from definitions.promotion_runs import (
    ExternalAlert,
    GateOverride,
    GateProgress,
    OperatorAction,
    PromotionRequest,
    PromotionStatus,
    RegisterReply,
    RingAttempt,
    RingGrant,
    RunState,
    Superseded,
    TestResult,
)
from workflows.freeze_guard import history_past

PASSING = (GateOutcome.PASSED, GateOutcome.OVERRIDDEN)

#: (ring, gate name): how a gate is addressed in the run's bookkeeping.
GateKey = tuple[str, str]

#: workflow.patched() id guarding continue-as-new of long promotions (runs from before it never do).
PATCH_CONTINUE = "i13-promotion-continue-as-new"


class ContinueAsNew(Exception):
    """Raised at a safe point in ``phase`` of the current ring once the history passed its bound; the
    run method catches it and continues as new with the carried state (``ring.py``)."""

    def __init__(self, phase: str) -> None:
        super().__init__(phase)
        self.phase = phase


class PromotionState:
    """The run's fields and the small helpers every part of the run needs."""

    def __init__(self) -> None:
        self._req: PromotionRequest | None = None
        self._status = PromotionStatus(pipeline="", version="")
        self._audit: list[RingAttempt] = []
        self._attempts: dict[str, int] = {}
        self._gate_models: dict[GateKey, Any] = {}
        self._registered: RegisterReply | None = None
        self._grants: dict[str, RingGrant] = {}
        self._superseded: Superseded | None = None
        self._abort: OperatorAction | None = None
        self._rollback: OperatorAction | None = None
        self._alert: ExternalAlert | None = None
        self._retry: set[GateKey] = set()
        self._overrides: dict[GateKey, GateOverride] = {}
        self._test_results: dict[GateKey, TestResult] = {}
        self._calendar_gen = 0
        self._verified_at: dict[str, datetime] = {}
        self._current: RingAttempt | None = None
        self._calendars: dict[str, Any] = {}
        self._inner: dict[GateKey, asyncio.Future[tuple[GateOutcome, str]]] = {}
        #: Each open gate's progress (carried through continue-as-new) and the gate activities in flight
        #: (a run continues as new only when none is: every gate then waits on a timer or a person).
        self._progress: dict[GateKey, GateProgress] = {}
        self._in_flight = 0
        #: False once ``workflow.patched(PATCH_CONTINUE)`` said no (replaying a run from before it).
        self._bounded = True
        self._continuing = False
        self._continued = 0

    def _continue_now(self) -> bool:
        """Whether to continue as new now that the history is full (asked at a safe point): yes for
        runs started with this code; no, for the rest of the run, when replaying a run from before."""
        if workflow.patched(PATCH_CONTINUE):
            self._continuing = True
            return True
        self._bounded = False
        return False

    def _history_full(self) -> bool:
        """The history passed the run's bound: continue as new at the next safe point."""
        if not self._bounded or self._req is None:
            return False
        return history_past(self._req.continue_as_new_after)

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

    def _halt_text(self) -> str:
        if self._superseded is not None:
            return f"superseded by version {self._superseded.by_version} (#{self._superseded.by_sequence})"
        if self._abort is not None:
            return f"aborted by {self._abort.by or 'an operator'}" + (
                f": {self._abort.reason}" if self._abort.reason else ""
            )
        if self._rollback is not None:
            return f"rollback requested by {self._rollback.by or 'an operator'}"
        return ""

    async def _pause_point(self) -> None:
        if self._status.paused:
            self._status.state = RunState.PAUSED
            await workflow.wait_condition(lambda: not self._status.paused or self._halt() is not None)
            if self._halt() is None:
                self._status.state = RunState.RUNNING
