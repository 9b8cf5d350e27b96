"""A stand-in lifecycle workflow that waits for a signal (kept small for the workflow sandbox)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tests.support import JoinArgs


@workflow.defn(name="JoinTargetWorkflow")
class JoinTargetWorkflow:
    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self, args: JoinArgs) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self._done)
        return {"joined": args.id, "value": args.value}

    @workflow.signal
    def finish(self) -> None:
        self._done = True
