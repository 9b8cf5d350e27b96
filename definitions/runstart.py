"""Starting a pipeline run and re-running a run from a step: shared by the CLI and the console.

The caller says whether the namespace knows our search attributes (``search_attributes_ok``; the CLI
asks the server, the console's connection remembers it), because an unregistered attribute fails the
workflow task forever.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from definitions import queues
from definitions import search_attributes as sa
from definitions.catalog import load_catalog
from definitions.library import PipelineLibrary
from definitions.pipeline import Pipeline
from definitions.runquery import request_definition, run_request
from definitions.runs import PipelineRequest, PipelineStatus, Reuse, StepState
from definitions.validate import parse_pipeline, validate_definition


def default_workflow_id(pipeline: str) -> str:
    """``<pipeline>-<UTC second>-<8 hex>``: readable, sortable, and unique for bulk starts (a schedule's
    backfill, a script starting hundreds in one second; 4 hex digits collided at 120 starts a second)."""
    return f"{pipeline}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"


async def start_pipeline(
    client: Client,
    data: dict[str, Any],
    inputs: dict[str, Any],
    *,
    search_attributes_ok: bool,
    workflow_id: str | None = None,
    requested_by: str | None = None,
    source: str = "",
    reuse: Reuse | None = None,
) -> WorkflowHandle[Any, Any]:
    """Validate fully, then start. An invalid definition never reaches Temporal (DefinitionError)."""
    pipeline, resolved = validate_definition(
        data, load_catalog(), inputs=inputs, known_pipelines=PipelineLibrary().call_graph(), source=source
    )
    pairs = [SearchAttributePair(sa.PIPELINE, pipeline.name)]
    if isinstance(resolved.get("site"), str):
        pairs.append(SearchAttributePair(sa.SITE, resolved["site"]))
    return await client.start_workflow(
        "PipelineWorkflow",
        PipelineRequest(definition=data, inputs=resolved, requested_by=requested_by, reuse=reuse),
        id=workflow_id or default_workflow_id(pipeline.name),
        task_queue=queues.PIPELINE,
        search_attributes=TypedSearchAttributes(pairs) if search_attributes_ok else None,
    )


def downstream(pipeline: Pipeline, step: str) -> set[str]:
    """`step` and every step that needs it, transitively."""
    out = {step}
    changed = True
    while changed:
        changed = False
        for s in pipeline.spec.steps:
            if s.name not in out and out.intersection(s.needs):
                out.add(s.name)
                changed = True
    return out


class RerunError(ValueError):
    """The re-run cannot start (unknown step); the message says why."""


async def rerun(
    client: Client,
    workflow_id: str,
    from_step: str,
    actor: str,
    new_id: str | None = None,
    *,
    search_attributes_ok: bool,
    reason: str = "",
) -> tuple[WorkflowHandle[Any, Any], list[str]]:
    """Start a new run of `workflow_id`'s pipeline (same definition and inputs) in which the steps
    that do not depend on `from_step` and succeeded before are taken as done with their outputs.

    Who started it and why travel in the new run's request (its first history event: the audit)."""
    request = await run_request(client, workflow_id)
    data, inputs = request_definition(request)
    if data is None:
        data = PipelineLibrary().load(request.pipeline or "")
    pipeline = parse_pipeline(data, f"run {workflow_id}")
    if from_step not in {s.name for s in pipeline.spec.steps}:
        names = ", ".join(s.name for s in pipeline.spec.steps)
        raise RerunError(f"no step {from_step!r} in pipeline {pipeline.name!r}; steps: {names}")
    redo = downstream(pipeline, from_step)
    handle = client.get_workflow_handle(workflow_id)
    status = await handle.query("status", result_type=PipelineStatus)
    reused: dict[str, Any] = {}
    for st in status.steps:
        if st.name not in redo and st.state in (StepState.SUCCEEDED, StepState.SKIPPED):
            reused[st.name] = await handle.query("outputs", st.name)
    started = await start_pipeline(
        client,
        data,
        inputs,
        search_attributes_ok=search_attributes_ok,
        workflow_id=new_id or f"{workflow_id}-rerun-{secrets.token_hex(2)}",
        requested_by=actor,
        source=f"run {workflow_id}",
        reuse=Reuse(from_run=workflow_id, steps=reused, from_step=from_step, by=actor, reason=reason),
    )
    return started, sorted(reused)
