"""The server step types inside the real pipeline engine: discover, then provision every discovered
server with forEach (child ids server-provision-<identity>), then the fleet step on the same site."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from definitions import queues
from definitions.runs import PipelineRequest
from landscape.landscape import Landscape
from landscape.redfish import RedfishEmulator
from tests.server_fixtures import BMC_PASSWORD, PASSWORD_ENV, redfish_worker
from workers.worker import build_workers

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("redfish-site")]

STEPS = """
- name: discover
  uses: server.discover
  with:
    site: ${{ inputs.site }}
    concurrency: 4
- name: provision
  uses: server.provision_one
  needs: [discover]
  forEach: steps.discover.outputs.servers
  maxParallel: 2
  with:
    site: ${{ inputs.site }}
    server: ${{ item }}
    spec: {power_timeout_s: 120}
- name: fleet
  uses: server.provision
  needs: [provision]
  with:
    site: ${{ inputs.site }}
    servers: ${{ steps.discover.outputs.servers }}
    concurrency: 2
"""


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedfishEmulator]:
    import os

    os.environ[PASSWORD_ENV] = BMC_PASSWORD
    emu = RedfishEmulator(2, username="admin", password=BMC_PASSWORD, seed=f"pipe-{uuid.uuid4().hex[:6]}")
    with Landscape([emu], state_dir=tmp_path_factory.mktemp("pipe")).running():
        yield emu


async def test_server_steps_in_a_pipeline(
    ts_env: WorkflowEnvironment, small_site: RedfishEmulator, tmp_path: Path
) -> None:
    definition: dict[str, Any] = {
        "apiVersion": "apeiro.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "servers"},
        "spec": {
            "inputs": {"site": {"type": "object"}},
            "steps": yaml.safe_load(STEPS),
            "outputs": {
                "provisioned": "steps.fleet.outputs.provisioned",
                "identities": "steps.discover.outputs.identities",
            },
        },
    }
    site = small_site.site_definition("pipe-site")
    pipeline_workers = build_workers(ts_env.client, [queues.PIPELINE])
    with ts_env.auto_time_skipping_disabled():
        async with pipeline_workers[0], redfish_worker(ts_env.client, queues.REDFISH, tmp_path):
            handle = await ts_env.client.start_workflow(
                "PipelineWorkflow",
                PipelineRequest(definition=definition, inputs={"site": site}),
                id=f"pipe-{uuid.uuid4().hex[:8]}",
                task_queue=queues.PIPELINE,
            )
            result = await handle.result()
            child = await ts_env.client.get_workflow_handle(
                f"server-provision-{small_site.systems[0]['uuid']}"
            ).describe()
    assert {s["name"]: s["state"] for s in result["steps"]} == {
        "discover": "succeeded",
        "provision": "succeeded",
        "fleet": "succeeded",
    }
    assert sorted(result["outputs"]["identities"]) == sorted(str(s["uuid"]) for s in small_site.systems)
    assert sorted(result["outputs"]["provisioned"]) == sorted(result["outputs"]["identities"])
    assert child.workflow_type == "ServerProvisionWorkflow"
