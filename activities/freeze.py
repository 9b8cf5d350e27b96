"""``freeze.check``: is the landscape frozen for this subject? (registered on every queue whose
workflows act on the fleet, so a workflow asks on its own queue).

Reads the well-known freeze workflow with a describe (not running -> not frozen) and the active
freeze it publishes in its memo. The answer names who froze, since when and why, so a held workflow
can show it.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from definitions.freeze import FREEZE_WORKFLOW_ID, MEMO_KEY, ActiveFreeze, FreezeCheck, FreezeVerdict


@activity.defn(name="freeze.check")
async def check_freeze(inp: FreezeCheck) -> FreezeVerdict:
    handle = activity.client().get_workflow_handle(FREEZE_WORKFLOW_ID)
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return FreezeVerdict()
        raise
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return FreezeVerdict()
    # The memo, not a query: a describe needs no worker, so the check never waits for one.
    raw = await desc.memo_value(MEMO_KEY, None)
    if not raw:
        return FreezeVerdict()
    active = ActiveFreeze.model_validate(raw)
    exemption = next((e for e in active.exemptions if e.covers(inp.subject)), None)
    return FreezeVerdict(
        frozen=True,
        exempt=exemption is not None,
        message=active.message(),
        recheck_seconds=active.recheck_seconds,
        exemption=exemption,
    )


ACTIVITIES = [check_freeze]
