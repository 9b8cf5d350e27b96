"""Hold a workflow while the landscape is frozen (the check every fleet step and ring makes).

``hold_while_frozen`` asks ``freeze.check`` (on the workflow's own task queue) and, while the
answer is "frozen" and the subject is not exempt, reports "frozen by X since T: reason" through
``report`` (the workflow's status query shows it) and looks again after the freeze's recheck
interval on a durable timer. Work already in flight is not interrupted: callers check before they
start something new.

A freeze can last days, and every recheck adds events to the held workflow's history. ``HistoryBound``
is the one rule every held workflow uses to stay bounded (docs/architecture.md, "Bounded histories"):
its ``park`` is the ``stop=`` hook of ``hold_while_frozen``; once the history passed the run's bound
(or the server suggests continue-as-new) it says yes, behind the caller's ``workflow.patched`` id, and
the caller continues as new from that freeze point carrying what it has done.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from definitions.freeze import FreezeCheck, FreezeVerdict

#: workflow.patched() id guarding the freeze check in workflows that existed before it.
FREEZE_PATCH = "freeze-check-v1"

#: workflow.patched() ids of the held workflows that continue as new at a freeze point once the bound is passed.
ROLLOUT_CONTINUE_PATCH = "i13-rollout-freeze-continue-as-new"
CLUSTER_CONTINUE_PATCH = "i13-cluster-freeze-continue-as-new"

_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=15))


async def hold_while_frozen(
    what: str,
    report: Callable[[str], None],
    subject: str | None = None,
    stop: Callable[[], bool] | None = None,
) -> FreezeVerdict:
    """Return once the subject may act (not frozen, or exempt); the verdict says which. ``stop``
    (asked before each wait) ends the hold early with the frozen verdict: a long-held workflow
    continues as new there and holds again in its next run."""
    subject = subject or workflow.info().workflow_id
    while True:
        verdict: FreezeVerdict = await workflow.execute_activity(
            "freeze.check",
            FreezeCheck(subject=subject, what=what),
            result_type=FreezeVerdict,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_RETRY,
        )
        if verdict.frozen and verdict.exempt and verdict.exemption is not None:
            report(
                f"{what}: exempt from the freeze ({verdict.message}); approved by "
                f"{verdict.exemption.approver}: {verdict.exemption.reason}"
            )
            return verdict
        if not verdict.frozen:
            return verdict
        report(f"{what}: waiting: {verdict.message}")
        if stop is not None and stop():
            return verdict
        await workflow.sleep(timedelta(seconds=verdict.recheck_seconds))


def history_past(after: int) -> bool:
    """The run's history has ``after`` events or more, or the server suggests continue-as-new."""
    info = workflow.info()
    return info.is_continue_as_new_suggested() or info.get_current_history_length() >= after


class HistoryBound:
    """When a run held by a freeze continues as new: ``park`` (the ``stop=`` hook of
    ``hold_while_frozen``, asked only at a safe point) says yes once the history passed ``after``
    events, for runs that record ``patch``; a run replayed from before the patch never does."""

    def __init__(self, patch: str, after: int) -> None:
        self.patch = patch
        self.after = after
        #: False once ``workflow.patched(patch)`` said no (a run from before the patch, replaying).
        self.bounded = True
        #: True once decided: nothing new starts; the run continues as new at its next safe point.
        self.continuing = False

    def park(self) -> bool:
        if self.continuing:
            return True
        if not self.bounded or not history_past(self.after):
            return False
        if workflow.patched(self.patch):
            self.continuing = True
        else:
            self.bounded = False
        return self.continuing
