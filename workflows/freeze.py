"""FreezeWorkflow: the landscape-wide change freeze (id ``apeiro-freeze``, queue ``pipeline``).

One long-running workflow holds whether the landscape is frozen, by whom, since when, why, until when,
which subjects are exempt, and the audit list. Updates ``start_freeze`` / ``end_freeze`` / ``exempt``
are validated before they are recorded; the ``freeze`` signal (for the webhook gateway's
signal-with-start) starts a freeze or, if one is active, records that it was asked for again. An
``until`` is a durable timer: the freeze lifts itself ("expired"). See :mod:`definitions.freeze` for
why a workflow.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.freeze import (
        AUDIT_KEEP,
        MEMO_KEY,
        ActiveFreeze,
        AuditEntry,
        Exemption,
        FreezeEnd,
        FreezeRequest,
        FreezeState,
    )


@workflow.defn(name="FreezeWorkflow")
class FreezeWorkflow:
    def __init__(self) -> None:
        self._state = FreezeState()
        self._changed = 0

    def _publish(self) -> None:
        """The active freeze in the memo too: `freeze.check` reads it with a describe, which needs no
        worker, so a stopped pipeline worker never hangs the workflows that check."""
        active = self._state.active
        workflow.upsert_memo({MEMO_KEY: active.model_dump(mode="json") if active is not None else None})

    def _audit(self, action: str, by: str, reason: str = "", subject: str = "") -> None:
        self._state.audit.append(AuditEntry(at=workflow.now(), action=action, by=by, reason=reason, subject=subject))
        del self._state.audit[:-AUDIT_KEEP]
        self._changed += 1
        self._publish()

    def _begin(self, req: FreezeRequest) -> None:
        self._state.active = ActiveFreeze(
            by=req.by, since=workflow.now(), reason=req.reason, until=req.until, recheck_seconds=req.recheck_seconds
        )
        self._audit("started", req.by, req.reason)

    @workflow.query
    def state(self) -> FreezeState:
        return self._state

    @workflow.update
    def start_freeze(self, req: FreezeRequest) -> FreezeState:
        self._begin(req)
        return self._state

    @start_freeze.validator
    def _check_start(self, req: FreezeRequest) -> None:
        if self._state.active is not None:
            raise ValueError(f"already {self._state.active.message()}; end it first")
        if req.until is not None and req.until <= workflow.now():
            raise ValueError(f"until {req.until.isoformat()} is in the past")

    @workflow.signal
    def freeze(self, req: FreezeRequest) -> None:
        """For signal-with-start (the Alertmanager route): never refused; repeats are audited only."""
        if self._state.active is None:
            self._begin(req)
        else:
            self._audit("requested-again", req.by, req.reason)

    @workflow.update
    def end_freeze(self, end: FreezeEnd) -> FreezeState:
        self._state.active = None
        self._audit("ended", end.by, end.reason)
        return self._state

    @end_freeze.validator
    def _check_end(self, end: FreezeEnd) -> None:
        self._require_frozen("the landscape is not frozen")

    @workflow.update
    def exempt(self, ex: Exemption) -> FreezeState:
        assert self._state.active is not None
        ex.at = workflow.now()
        self._state.active.exemptions.append(ex)
        self._audit("exempted", ex.approver, ex.reason, ex.subject)
        return self._state

    @exempt.validator
    def _check_exempt(self, ex: Exemption) -> None:
        self._require_frozen("the landscape is not frozen: nothing to exempt from")

    def _require_frozen(self, refusal: str) -> None:
        """Refuse (with ``refusal``) an update that needs an active freeze."""
        if self._state.active is None:
            raise ValueError(refusal)

    @workflow.run
    async def run(self, carried: FreezeState | None = None) -> None:
        if carried is not None:
            self._state = carried
        self._publish()
        while True:
            seen = self._changed
            active = self._state.active
            timeout = None
            if active is not None and active.until is not None:
                timeout = max(active.until - workflow.now(), timedelta(seconds=0))
            try:
                await workflow.wait_condition(lambda seen=seen: self._changed != seen, timeout=timeout)  # type: ignore[misc]
            except TimeoutError:
                if self._state.active is active and active is not None:
                    self._state.active = None
                    self._audit("expired", "apeiro", f"until {active.until} reached")
            if workflow.info().is_continue_as_new_suggested() and workflow.all_handlers_finished():
                workflow.continue_as_new(self._state)
