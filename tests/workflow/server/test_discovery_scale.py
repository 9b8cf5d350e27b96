"""1,000 systems behind one BMC plus 300 empty scanned addresses, with stand-in activities: the
discovery stays far from Temporal's history and payload limits (batching into child workflows)."""

from __future__ import annotations

import uuid

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from definitions.server import (
    BmcConnection,
    DiscoverBmcInput,
    DiscoverInput,
    DiscoverResult,
    InventoryReadInput,
    ListSystemsResult,
    ServerSummary,
    SiteDefinition,
    SiteSnapshot,
)
from workers.worker import workflow_runner
from workflows.server import ServerDiscoveryWorkflow, ServerInventoryBatchWorkflow, ServerListBatchWorkflow

pytestmark = [pytest.mark.workflow]

SYSTEMS = 1000


@activity.defn(name="redfish.list_systems")
async def list_systems(conn: BmcConnection) -> ListSystemsResult:
    if conn.probe:
        raise ApplicationError(f"BMC {conn.url} is unreachable: connection refused", type="BmcUnreachable")
    return ListSystemsResult(
        bmc_url=conn.url, system_paths=[f"/redfish/v1/Systems/{i}" for i in range(SYSTEMS)]
    )


@activity.defn(name="redfish.discover_bmc")
async def discover_bmc(req: DiscoverBmcInput) -> ListSystemsResult:
    # 1,000 systems are more than the inline limit: listed here, inventoried in batches.
    return await list_systems(req.conn)


@activity.defn(name="redfish.inventory_system")
async def inventory_system(req: InventoryReadInput) -> ServerSummary:
    n = req.target.system_path.rsplit("/", 1)[1]
    return ServerSummary(
        identity=f"00000000-0000-4000-8000-{int(n):012d}",
        bmc_url=req.target.bmc.url,
        system_path=req.target.system_path,
        macs=[f"52:54:00:00:{int(n) >> 8:02x}:{int(n) & 255:02x}"],
        manufacturer="Stand-in",
        memory_gib=64,
        processor_count=2,
        fingerprint="f" * 16,
    )


@activity.defn(name="redfish.load_snapshot")
async def load_snapshot(site: str) -> SiteSnapshot:
    return SiteSnapshot(site=site)


@activity.defn(name="redfish.save_snapshot")
async def save_snapshot(snap: SiteSnapshot) -> None:
    return None


async def test_thousand_systems_stay_far_from_history_limits(
    ts_env: WorkflowEnvironment, task_queue: str
) -> None:
    site = SiteDefinition.model_validate(
        {
            "name": "big",
            "bmcs": [{"url": "https://10.9.0.1"}],
            "ranges": [{"start": "10.9.1.0", "end": "10.9.2.43", "ports": [443]}],
        }
    )
    assert len(site.connections()) == 301
    wid = f"discover-big-{uuid.uuid4().hex[:6]}"
    async with Worker(
        ts_env.client,
        task_queue=task_queue,
        workflows=[ServerDiscoveryWorkflow, ServerListBatchWorkflow, ServerInventoryBatchWorkflow],
        activities=[list_systems, discover_bmc, inventory_system, load_snapshot, save_snapshot],
        workflow_runner=workflow_runner(),
        max_concurrent_activities=200,
    ):
        result: DiscoverResult = await ts_env.client.execute_workflow(
            ServerDiscoveryWorkflow.run,
            DiscoverInput(site=site, concurrency=64),
            id=wid,
            task_queue=task_queue,
        )
    assert len(result.servers) == SYSTEMS and result.problems == []
    assert result.addresses_without_bmc == 300 and result.bmcs_reachable == 1
    assert len(result.diff.added) == SYSTEMS
    assert len(result.model_dump_json()) < 1 << 20  # well below the 2 MiB payload limit
    ids = [wid] + [f"{wid}/list-{i}" for i in range(7)] + [f"{wid}/inventory-{i}" for i in range(10)]
    sizes = {}
    for i in ids:
        sizes[i] = len((await ts_env.client.get_workflow_handle(i).fetch_history()).events)
    # Temporal suggests continue-as-new at 4,096 events and stops at 51,200.
    assert max(sizes.values()) < 4096, sizes
