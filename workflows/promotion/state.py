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

PASSING = (GateOutcome.PASSED, GateOutcome.OVERRIDDEN)

#: (ring, gate name): how a gate is addressed in the run's bookkeeping.
GateKey = tuple[str, str]


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
