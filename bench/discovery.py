"""Discovery + full inventory of N emulated systems: through the workflow vs a direct 8-thread script.

Both read the same inventories from the same emulator in the same run; the figure is the ratio of the
two wall-clock times (target: the workflow within 1.25x of the direct script). With ``--systems 1000``
it also shows the largest history among the workflows of the run (limit: 51,200 events).

    python -m bench.discovery [--systems 200] [--concurrency 8] [--skip-direct]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.redfish.activities import RedfishActivities
from activities.redfish.backend import RedfishServer, list_system_paths
from activities.redfish.client import connect
from activities.redfish.store import FileInventoryStore
from definitions.server import (
    BmcConnection,
    BmcCredentials,
    BmcEndpointSpec,
    DiscoverInput,
    DiscoverResult,
    SiteDefinition,
)
from landscape.landscape import Landscape
from landscape.redfish import RedfishEmulator
from landscape.temporal import TemporalDevServer
from workers.config import data_converter
from workers.worker import workflow_runner
from workflows.server import ServerDiscoveryWorkflow, ServerInventoryBatchWorkflow, ServerListBatchWorkflow

PASSWORD = "bench-password"


def direct(conn: BmcConnection, threads: int) -> tuple[float, int]:
    """The baseline: list the systems and read every inventory with sushy on `threads` threads."""
    start = time.perf_counter()
    root = connect(conn)
    paths = list_system_paths(root)
    with ThreadPoolExecutor(threads) as pool:
        invs = list(pool.map(lambda p: RedfishServer(root, conn.url, p).inventory(), paths))
    return time.perf_counter() - start, len(invs)


async def through_workflow(
    client: Client, site: SiteDefinition, concurrency: int, store: Path
) -> tuple[float, DiscoverResult, int]:
    acts = RedfishActivities(store=FileInventoryStore(store))
    queue = "bench-redfish"
    with ThreadPoolExecutor(max(concurrency, 8)) as pool:
        worker = Worker(
            client,
            task_queue=queue,
            workflows=[ServerDiscoveryWorkflow, ServerListBatchWorkflow, ServerInventoryBatchWorkflow],
            activities=acts.all(),
            activity_executor=pool,
            max_concurrent_activities=max(concurrency, 8),
            workflow_runner=workflow_runner(),
        )
        async with worker:
            wid = f"bench-discovery-{int(time.time())}"
            start = time.perf_counter()
            result: DiscoverResult = await client.execute_workflow(
                ServerDiscoveryWorkflow.run,
                DiscoverInput(site=site, concurrency=concurrency, compare_with_previous=False),
                id=wid,
                task_queue=queue,
            )
            elapsed = time.perf_counter() - start
            largest = 0
            ids = [wid] + [f"{wid}/list-0"] + [f"{wid}/inventory-{i}" for i in range(-(-len(result.servers) // 100))]
            for i in ids:
                hist = await client.get_workflow_handle(i).fetch_history()
                largest = max(largest, len(hist.events))
    return elapsed, result, largest


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--skip-direct", action="store_true")
    args = ap.parse_args()
    os.environ["APEIRO_BENCH_BMC_PASSWORD"] = PASSWORD
    with tempfile.TemporaryDirectory() as tmp:
        emu = RedfishEmulator(args.systems, username="admin", password=PASSWORD, seed="bench")
        land = Landscape([TemporalDevServer(headless=True, persistent=False), emu], state_dir=Path(tmp) / "land")
        with land.running():
            creds = BmcCredentials(username="admin", password_ref="env:APEIRO_BENCH_BMC_PASSWORD")
            conn = BmcConnection(url=emu.url, name="bench", credentials=creds)
            site = SiteDefinition(
                name="bench",
                credentials={"c": creds},
                default_credentials="c",
                bmcs=[BmcEndpointSpec(url=emu.url, name="bench")],
            )
            client = await Client.connect(land.part("temporal").endpoints["address"], data_converter=data_converter())
            direct(conn, 8)  # warm up the emulator (first reads populate its state)
            base_s, n = (0.0, 0) if args.skip_direct else direct(conn, 8)
            wf_s, result, largest = await through_workflow(client, site, args.concurrency, Path(tmp) / "store")
    print(f"systems: {args.systems} (one emulated BMC), workflow concurrency {args.concurrency}")
    print(
        f"workflow discovery+inventory: {wf_s:.2f} s for {len(result.servers)} servers, "
        f"{len(result.problems)} problems; largest history {largest} events (limit 51,200)"
    )
    if not args.skip_direct:
        print(f"direct sushy script, 8 threads: {base_s:.2f} s for {n} systems")
        print(f"ratio workflow/direct: {wf_s / base_s:.2f}x (target <= 1.25x)")


if __name__ == "__main__":
    asyncio.run(main())
