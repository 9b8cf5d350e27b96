"""A small lifecycle-like workflow for the progress interceptor test (module importable in the sandbox)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError


@activity.defn(name="test.progress_step")
async def progress_step(ok: bool) -> str:
    if not ok:
        raise ApplicationError("no", non_retryable=True)
    return "done"


@workflow.defn(name="ProgressTargetWorkflow")
class ProgressTargetWorkflow:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        opts = {"start_to_close_timeout": timedelta(seconds=10), "retry_policy": RetryPolicy(maximum_attempts=1)}
        await workflow.execute_activity(progress_step, True, activity_id="first", **opts)  # type: ignore[arg-type]
        try:
            await workflow.execute_activity(progress_step, False, activity_id="second", **opts)  # type: ignore[arg-type]
        except ActivityError:
            pass
        await workflow.wait_condition(lambda: self.go)
        return "ok"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True
