"""Shared pieces of the limit tests: a blob activity, a library of sub-pipelines, the wedge check."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from definitions import queues
from definitions.runs import PipelineRequest, PipelineResult
from definitions.steptypes import REGISTRY, StepTable
from workers.worker import build_workers
from workflows.stepexec import describe_failure


class BlobArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = 0
    big_int: bool = False


@activity.defn(name="test.blob")
async def blob(args: BlobArgs) -> dict[str, Any]:
    """Outputs of a given size (built at run time: a literal would break the definition size limit)."""
    out: dict[str, Any] = {"blob": "x" * args.size}
    if args.big_int:
        out["n"] = 2**70  # valid JSON, beyond CEL's int64
    return out


def register_blob_step() -> None:
    if "test.blob" not in REGISTRY:
        REGISTRY.register(
            StepTable(task_queue=queues.PIPELINE).activity(
                "test.blob", BlobArgs, None, "outputs of a given size",
                start_to_close=timedelta(minutes=1), default_max_attempts=1,
            )
        )


@dataclass
class Closed:
    """How a run ended: its failure message (None when it succeeded) and its result."""

    failure: str | None
    result: Any = None


@dataclass
class LimitsEngine:
    client: Client
    library: Path

    async def start(self, definition: Any = None, *, raw: Any = None, **request: Any) -> WorkflowHandle[Any, Any]:
        arg = raw if raw is not None else PipelineRequest(definition=definition, **request)
        return await self.client.start_workflow(
            "PipelineWorkflow", arg, id=f"lim-{uuid.uuid4().hex[:10]}", task_queue=queues.PIPELINE
        )

    async def closes(self, handle: WorkflowHandle[Any, Any], seconds: float = 60) -> Closed:
        """The run closes within ``seconds`` and no run of it (or its children) has a failed workflow task."""
        try:
            result = await asyncio.wait_for(handle.result(), seconds)
            closed = Closed(None, PipelineResult.model_validate(result) if isinstance(result, dict) else result)
        except WorkflowFailureError as exc:
            closed = Closed(describe_failure(exc))
        except TimeoutError:
            closed = Closed("(still running)")
        await assert_no_task_failures(self.client, handle.id)
        assert closed.failure != "(still running)", f"{handle.id} did not close within {seconds} s"
        return closed


async def continue_as_new_sizes(client: Client, workflow_id: str) -> list[int]:
    """Bytes of every continue-as-new input of a workflow, first run first.

    The time-skipping server does not enforce the 2 MiB payload limit the real server does, so tests
    assert on these sizes rather than waiting for the server to refuse one.
    """
    desc = await client.get_workflow_handle(workflow_id).describe()
    run_id: str | None = desc.raw_description.workflow_execution_info.first_run_id or desc.run_id
    sizes: list[int] = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        run_id = None
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            attrs = last.workflow_execution_continued_as_new_event_attributes
            sizes.append(attrs.input.ByteSize())
            run_id = attrs.new_execution_run_id
    return sizes


async def assert_no_task_failures(client: Client, workflow_id: str) -> None:
    """Every run of ``workflow_id`` (all continue-as-new generations) and of its children."""
    ids = [workflow_id]
    seen: set[str] = set()
    while ids:
        wid = ids.pop()
        if wid in seen:
            continue
        seen.add(wid)
        run_id: str | None = None
        handle = client.get_workflow_handle(wid)
        # Walk the chain of runs from the first: the first run's continue-as-new is where it wedged.
        desc = await handle.describe()
        run_id = desc.raw_description.workflow_execution_info.first_run_id or desc.run_id
        while run_id:
            history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
            for event in history.events:
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    cause = event.workflow_task_failed_event_attributes.failure.message
                    raise AssertionError(f"{wid} ({run_id}): workflow task failed: {cause[:500]}")
                if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                    ids.append(event.start_child_workflow_execution_initiated_event_attributes.workflow_id)
            last = history.events[-1]
            run_id = (
                last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
                else None
            )


@pytest.fixture
async def limits_engine(
    ts_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[LimitsEngine]:
    from tests.workflow.limits.user_error_target import RaisesKeyErrorWorkflow

    monkeypatch.setenv("APEIRO_DEFINITIONS", str(tmp_path))
    register_blob_step()
    workers = build_workers(
        ts_env.client,
        [queues.PIPELINE],
        extra_activities={queues.PIPELINE: [blob]},
        extra_workflows={queues.PIPELINE: [RaisesKeyErrorWorkflow]},
    )
    async with workers[0]:
        yield LimitsEngine(ts_env.client, tmp_path)
