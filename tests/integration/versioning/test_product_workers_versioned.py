"""The product's pipeline worker, versioned, on a dev server of its own (a versioned `pipeline` queue
would take work from the unversioned workers of the other tests): a pipeline waiting on an approval
started on build A is AUTO_UPGRADE, moves to build B when B becomes current, and finishes there."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion

from definitions import queues
from definitions.runs import ApprovalDecision, PipelineRequest, PipelineStatus, StepState
from landscape.landscape import Landscape
from landscape.temporal import TemporalDevServer
from tests.support import pipeline
from workers.config import data_converter
from workers.deploy import DeployError, describe, set_current
from workers.worker import build_workers

pytestmark = pytest.mark.integration


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[str]:
    land = Landscape([TemporalDevServer(headless=True, persistent=False)], state_dir=tmp_path)
    with land.running():
        yield land.part("temporal").endpoints["address"]


async def _make_current(client: Client, build: str) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                await set_current(client, "apeiro", build)
                return
            except DeployError:
                await asyncio.sleep(0.3)


async def test_waiting_pipeline_moves_to_the_new_build(own_server: str) -> None:
    client = await Client.connect(own_server, data_converter=data_converter())
    definition = pipeline(
        [
            {"name": "gate", "uses": "core.approval", "with": {"approvers": ["ops"]}},
            {"name": "after", "uses": "core.echo", "needs": ["gate"], "with": {"values": {"x": 1}}},
        ]
    )
    a = build_workers(client, [queues.PIPELINE], deployment=WorkerDeploymentVersion("apeiro", "build-a"))[0]
    async with a:
        await _make_current(client, "build-a")
        handle = await client.start_workflow(
            "PipelineWorkflow",
            PipelineRequest(definition=definition),
            id="versioned-pipeline",
            task_queue=queues.PIPELINE,
        )
        async with asyncio.timeout(30):
            while True:
                st = await handle.query("status", result_type=PipelineStatus)
                if st.steps and st.steps[0].state is StepState.WAITING and st.steps[0].message:
                    break
                await asyncio.sleep(0.1)
        assert st.revision
        b = build_workers(client, [queues.PIPELINE], deployment=WorkerDeploymentVersion("apeiro", "build-b"))[0]
        async with b:
            await _make_current(client, "build-b")
            view = await describe(client, "apeiro")
            (run,) = [r for r in view.runs if r.workflow_id == "versioned-pipeline"]
            assert run.behavior == "auto_upgrade"
            await handle.execute_update("approve", ApprovalDecision(step="gate", approver="ops"))
            result = await asyncio.wait_for(handle.result(), 30)
            assert result["state"] == "succeeded"
            desc = await handle.describe()
            assert desc.raw_description.workflow_execution_info.versioning_info.deployment_version.build_id == "build-b"
