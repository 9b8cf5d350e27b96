"""``freeze.check``: is the landscape frozen for this subject? (registered on every queue whose
workflows act on the fleet, so a workflow asks on its own queue).

Reads the well-known freeze workflow: describe (not running -> not frozen), then its ``state``
query. The answer names who froze, since when and why, so a held workflow can show it.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from definitions.freeze import FREEZE_WORKFLOW_ID, FreezeCheck, FreezeState, FreezeVerdict


@activity.defn(name="freeze.check")
async def check_freeze(inp: FreezeCheck) -> FreezeVerdict:
    handle = activity.client().get_workflow_handle(FREEZE_WORKFLOW_ID)
    try:
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return FreezeVerdict()
        state = await handle.query("state", result_type=FreezeState)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return FreezeVerdict()
        raise
    active = state.active
    if active is None:
        return FreezeVerdict()
    exemption = next((e for e in active.exemptions if e.covers(inp.subject)), None)
    return FreezeVerdict(
        frozen=True,
        exempt=exemption is not None,
        message=active.message(),
        recheck_seconds=active.recheck_seconds,
        exemption=exemption,
    )


ACTIVITIES = [check_freeze]
