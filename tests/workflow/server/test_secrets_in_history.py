"""The BMC password must not appear in any workflow history of a run (parent and children)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from definitions.server import DiscoverInput, DiscoverResult, ProvisionFleetInput, ProvisionSpec
from landscape.landscape import Landscape
from tests.server_fixtures import BMC_PASSWORD, redfish_worker, site
from tests.support import json_objects
from workers.config import data_converter
from workers.worker import workflow_runner
from workflows.server import (
    ServerDiscoveryWorkflow,
    ServerInventoryBatchWorkflow,
    ServerListBatchWorkflow,
    ServerProvisionFleetWorkflow,
    ServerProvisionWorkflow,
)

SERVER_WORKFLOWS = [
    ServerDiscoveryWorkflow,
    ServerListBatchWorkflow,
    ServerInventoryBatchWorkflow,
    ServerProvisionFleetWorkflow,
    ServerProvisionWorkflow,
]

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("redfish-site")]


def readable(history_json: str) -> str:
    """The exported history with every payload's base64 `data` decoded, so a search sees plain text."""
    out = [history_json]
    for node in json_objects(json.loads(history_json)):
        if isinstance(data := node.get("data"), str):
            try:
                out.append(base64.b64decode(data, validate=True).decode("utf-8", "replace"))
            except (binascii.Error, ValueError):
                pass
    return "\n".join(out)


async def test_password_absent_from_exported_histories(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu = redfish_site.part("redfish")
    wid = f"discover-secret-{uuid.uuid4().hex[:6]}"
    definition = site("lab-secret", emu.url)
    async with redfish_worker(ts_env.client, task_queue, tmp_path):
        result: DiscoverResult = await ts_env.client.execute_workflow(
            ServerDiscoveryWorkflow.run, DiscoverInput(site=definition), id=wid, task_queue=task_queue
        )
        # Server 1 (already On after the never-reports-in test, or Off): the other tests own servers 0, 2, 3.
        chosen = [s for s in result.servers if s.identity == emu.systems[1]["uuid"]]
        # Provisioning without image or BIOS changes still powers the servers on and off through the BMC.
        fleet_id = f"fleet-secret-{uuid.uuid4().hex[:6]}"
        fleet = await ts_env.client.execute_workflow(
            ServerProvisionFleetWorkflow.run,
            ProvisionFleetInput(servers=chosen, site=definition, spec=ProvisionSpec(power_timeout_s=60)),
            id=fleet_id,
            task_queue=task_queue,
        )
    assert result.servers and fleet.provisioned == [chosen[0].identity]
    ids = [
        wid,
        f"{wid}/list-0",
        f"{wid}/inventory-0",
        fleet_id,
        f"server-provision-{chosen[0].identity}",
    ]
    exported = []
    replayer = Replayer(
        debug_mode=True, workflows=SERVER_WORKFLOWS, data_converter=data_converter(), workflow_runner=workflow_runner()
    )
    for workflow_id in ids:
        history = await ts_env.client.get_workflow_handle(workflow_id).fetch_history()
        exported.append(readable(history.to_json()))
        # The same histories replay without non-determinism (guards later changes to the workflows).
        await replayer.replay_workflow(history)
    assert all(len(h) > 200 for h in exported)
    assert "env:APEIRO_TEST_BMC_PASSWORD" in exported[0]  # the reference travels...
    for text in exported:
        assert BMC_PASSWORD not in text  # ...the password never does
