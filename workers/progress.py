"""Progress on the Temporal UI's run page for every lifecycle workflow, without touching each one.

A workflow interceptor that, for workflows which do not publish their own details (the pipeline
interpreter does: workflows/repair.py), keeps ``workflow.set_current_details`` up to date with a
Markdown table of the activities and child workflows the run started and how each ended, and gives
every activity and child a summary (its type and id) when the workflow did not set one. Neither
adds a command to the history, so running workflows replay unchanged.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.worker import (
    Interceptor,
    StartActivityInput,
    StartChildWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

#: Workflows that publish their own current details.
OWN_DETAILS = frozenset({"PipelineWorkflow"})
MAX_ROWS = 25


class _Progress:
    """The rows of one run: (what, kind, state), newest last."""

    def __init__(self, workflow_type: str) -> None:
        self.workflow_type = workflow_type
        self.rows: list[list[str]] = []
        self.counts: dict[str, int] = {}

    def add(self, what: str, kind: str) -> list[str]:
        row = [what, kind, "running"]
        self.rows.append(row)
        self._count("running", 1)
        self.publish()
        return row

    def finish(self, row: list[str], state: str) -> None:
        self._count(row[2], -1)
        row[2] = state
        self._count(state, 1)
        self.publish()

    def _count(self, state: str, delta: int) -> None:
        self.counts[state] = self.counts.get(state, 0) + delta

    def publish(self) -> None:
        summary = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()) if n)
        shown = self.rows[-MAX_ROWS:]
        lines = [f"**{self.workflow_type}**: {summary}", "", "| started | kind | state |", "| --- | --- | --- |"]
        if len(self.rows) > MAX_ROWS:
            lines.append(f"| … {len(self.rows) - MAX_ROWS} earlier | | |")
        lines += [f"| {what.replace('|', '/')} | {kind} | {state} |" for what, kind, state in shown]
        workflow.set_current_details("\n".join(lines))


class _Outbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, progress: _Progress) -> None:
        super().__init__(next)
        self.progress = progress

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        what = f"{input.activity} · {input.activity_id}" if input.activity_id else input.activity
        if input.summary is None:
            input.summary = what
        handle = super().start_activity(input)
        row = self.progress.add(what, "activity")

        def done(task: Any) -> None:
            state = "cancelled" if task.cancelled() else ("failed" if task.exception() else "succeeded")
            self.progress.finish(row, state)

        handle.add_done_callback(done)
        return handle

    async def start_child_workflow(self, input: StartChildWorkflowInput) -> workflow.ChildWorkflowHandle[Any, Any]:
        if input.static_summary is None:
            input.static_summary = f"{input.workflow} · {input.id}"
        handle = await super().start_child_workflow(input)
        self.progress.add(f"{input.workflow} · {input.id}", "child workflow")
        return handle


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        info = outbound.info()  # workflow.info() is not available yet while interceptors initialise
        if info.workflow_type in OWN_DETAILS:
            super().init(outbound)
        else:
            super().init(_Outbound(outbound, _Progress(info.workflow_type)))


class ProgressInterceptor(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _Inbound
