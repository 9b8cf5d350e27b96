"""Blobs of every version start at once, largest first; histories from before still replay."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from definitions.ocm import TransportResult
from tests.workflow.ocm.overlap_fakes import TwoVersions, transport_input
from workers.config import data_converter
from workers.worker import workflow_runner
from workflows.transport import ComponentTransportWorkflow

pytestmark = pytest.mark.workflow

HISTORIES = Path(__file__).resolve().parent / "histories"


async def test_largest_blob_first_and_references_finalised_while_it_copies(ts_env: WorkflowEnvironment) -> None:
    fakes = TwoVersions()
    queue = f"ocm-{uuid.uuid4().hex[:8]}"
    async with Worker(
        ts_env.client,
        task_queue=queue,
        workflows=[ComponentTransportWorkflow],
        activities=fakes.activities(),
        workflow_runner=workflow_runner(),
    ):
        handle = await ts_env.client.start_workflow(
            "ComponentTransportWorkflow", transport_input(2), id=queue, task_queue=queue, result_type=TransportResult
        )
        result = await handle.result()
        history = await handle.fetch_history()
    ev = fakes.events
    assert ev[0] == "start big", ev
    assert ev.index("finalise acme/base") < ev.index("done big"), "the reference is published while the big blob copies"
    assert ev.index("done big") < ev.index("manifests") < ev.index("finalise acme/app"), "children before parents"
    assert [v.outcome for v in result.versions] == ["copied", "copied"]
    assert result.versions[1].bytes_sent == 10**9 + 40 and result.blobs_copied == 6
    replay = await Replayer(
        workflows=[ComponentTransportWorkflow], data_converter=data_converter(), workflow_runner=workflow_runner()
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None


async def test_transport_started_before_the_overlap_replays() -> None:
    """Recorded with the version-by-version workflow: it must replay unchanged (``workflow.patched``)."""
    path = HISTORIES / "transport-sequential.json"
    history = WorkflowHistory.from_json("transport-sequential", path.read_text())
    replay = await Replayer(
        workflows=[ComponentTransportWorkflow], data_converter=data_converter(), workflow_runner=workflow_runner()
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None, replay.replay_failure
    assert len(history.events) > 40


async def test_a_blob_two_versions_share_is_copied_once(ts_env: WorkflowEnvironment) -> None:
    """The same image blob into the same repository for two versions: one copy, the other waits for it."""
    fakes = TwoVersions(shared=True)
    queue = f"ocm-{uuid.uuid4().hex[:8]}"
    async with Worker(
        ts_env.client,
        task_queue=queue,
        workflows=[ComponentTransportWorkflow],
        activities=fakes.activities(),
        workflow_runner=workflow_runner(),
    ):
        result = await ts_env.client.execute_workflow(
            "ComponentTransportWorkflow", transport_input(4), id=queue, task_queue=queue, result_type=TransportResult
        )
    assert fakes.events.count("start 0") == 1, fakes.events
    assert [v.blobs_copied for v in result.versions] == [1, 5]
