from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from definitions import queues
from definitions.runs import PipelineRequest
from tests.support import Probe, pipeline, register_probe_step
from workers.worker import build_workers

SUB_PIPELINE = pipeline(
    [{"name": "double", "uses": "core.echo", "with": {"values": {"n": "${{ inputs.n * 2 }}"}}}],
    name="sub-double",
    inputs={"n": {"type": "integer"}},
    outputs={"doubled": "steps.double.outputs.n"},
)


@dataclass
class Engine:
    client: Client
    probe: Probe

    async def start(self, definition: Any = None, *, inputs: dict[str, Any] | None = None,
                    raw: Any = None, **request: Any) -> WorkflowHandle[Any, Any]:
        arg = raw if raw is not None else PipelineRequest(definition=definition, inputs=inputs or {}, **request)
        return await self.client.start_workflow("PipelineWorkflow", arg, id=f"wf-{uuid.uuid4().hex[:10]}",
                                                task_queue=queues.PIPELINE)


@pytest.fixture
async def engine(ts_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Engine]:
    (tmp_path / "sub.yaml").write_text(json.dumps(SUB_PIPELINE))
    monkeypatch.setenv("APEIRO_DEFINITIONS", str(tmp_path))
    register_probe_step()
    probe = Probe()
    workers = build_workers(ts_env.client, [queues.PIPELINE], extra_activities={queues.PIPELINE: probe.activities()})
    async with workers[0]:
        yield Engine(ts_env.client, probe)
