"""The run filters the CLI (`apeiro list`) and the console share, as a Temporal visibility query.

One module so both list the same runs for the same filters. Values are quoted for the visibility
query language (a quote inside a value is escaped), so a filter typed by a person cannot change the
query's meaning.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client

from definitions import search_attributes as sa
from definitions.runs import PipelineRequest

#: Operator words for a run's state -> Temporal's ExecutionStatus values.
STATES: dict[str, str] = {
    "running": "Running",
    "succeeded": "Completed",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Canceled",
    "canceled": "Canceled",
    "terminated": "Terminated",
    "timedout": "TimedOut",
    "continued": "ContinuedAsNew",
}

#: ExecutionStatus -> the word the CLI and console show.
STATE_WORDS: dict[str, str] = {
    "RUNNING": "running",
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "cancelled",
    "TERMINATED": "terminated",
    "TIMED_OUT": "timedout",
    "CONTINUED_AS_NEW": "continued",
}


class RunFilter(BaseModel):
    """Filters for a run listing; empty fields do not filter."""

    pipeline: str | None = None
    site: str | None = None
    state: str | None = Field(default=None, description="one of " + ", ".join(STATES))
    workflow_type: str = "PipelineWorkflow"

    def query(self) -> str:
        """The visibility query; raises ValueError naming the accepted words for an unknown state."""
        parts = [f"WorkflowType = {_quote(self.workflow_type)}"] if self.workflow_type else []
        if self.pipeline:
            parts.append(f"{sa.PIPELINE.name} = {_quote(self.pipeline)}")
        if self.site:
            parts.append(f"{sa.SITE.name} = {_quote(self.site)}")
        if self.state:
            status = STATES.get(self.state.strip().lower())
            if status is None:
                raise ValueError(f"unknown state {self.state!r}: use one of {', '.join(STATES)}")
            parts.append(f"ExecutionStatus = {_quote(status)}")
        return " AND ".join(parts)

    @property
    def uses_search_attributes(self) -> bool:
        return bool(self.pipeline or self.site)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class RunSummary(BaseModel):
    """One row of a run listing (what visibility knows without querying the run)."""

    workflow_id: str
    run_id: str | None = None
    workflow_type: str
    state: str
    pipeline: str | None = None
    site: str | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None


async def list_runs(client: Client, run_filter: RunFilter, limit: int = 50) -> list[RunSummary]:
    """Newest runs first, from Temporal visibility (no query to the runs themselves)."""
    rows: list[RunSummary] = []
    async for execution in client.list_workflows(run_filter.query(), limit=limit):
        attrs = execution.typed_search_attributes
        status = execution.status.name if execution.status is not None else "RUNNING"
        rows.append(
            RunSummary(
                workflow_id=execution.id,
                run_id=execution.run_id,
                workflow_type=execution.workflow_type,
                state=STATE_WORDS.get(status, status.lower()),
                pipeline=attrs.get(sa.PIPELINE),
                site=attrs.get(sa.SITE),
                started_at=execution.start_time,
                closed_at=execution.close_time,
            )
        )
    return rows


async def run_request(client: Client, workflow_id: str) -> PipelineRequest:
    """The request the current run of `workflow_id` started with (its first history event).

    Raises LookupError when the history has no start event (it cannot be read)."""
    handle = client.get_workflow_handle(workflow_id)
    async for event in handle.fetch_history_events():
        attrs = event.workflow_execution_started_event_attributes
        [request] = await client.data_converter.decode(attrs.input.payloads, [PipelineRequest])
        if not isinstance(request, PipelineRequest):
            request = PipelineRequest.model_validate(request)
        return request
    raise LookupError(f"run {workflow_id} has no start event")


def request_definition(request: PipelineRequest) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(definition or None when started by name, inputs) of a run's request, continued runs included."""
    if request.continuation is not None:
        return request.continuation.definition, request.continuation.inputs
    return request.definition, request.inputs
