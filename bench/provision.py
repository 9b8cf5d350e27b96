"""End-to-end provision + image of N emulated servers through the fleet workflow, against a direct
script that calls the same activity functions on the same number of threads, in the same run.

The emulator holds 2N systems: the workflow provisions the first N, the direct script the other N (a
provisioned server would skip most steps the second time). Both wait for the simulated OS to report in
(the workflow through the callback relay and the `report_in` signal, the script by polling).

    python -m bench.provision [--servers 50] [--concurrency 10]
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
from activities.redfish.store import FileInventoryStore
from bench._common import exit_cleanly
from definitions.server import (
    BmcCredentials,
    BmcEndpointSpec,
    BootRequest,
    ImageCheck,
    ImageSpec,
    MediaRequest,
    PowerRequest,
    PowerWait,
    ProvisionFleetInput,
    ProvisionFleetResult,
    ProvisionSpec,
    ServerRef,
    ServerSummary,
    SiteDefinition,
)
from landscape.landscape import Landscape
from landscape.os_callback import OsCallbackRelay
from landscape.redfish import ImageServer, RedfishEmulator
from landscape.temporal import TemporalDevServer
from workers.config import data_converter
from workers.worker import workflow_runner
from workflows.server import ServerProvisionFleetWorkflow, ServerProvisionWorkflow

PASSWORD = "bench-password"


def direct_one(acts: RedfishActivities, emu: RedfishEmulator, ref: ServerRef, image: ImageSpec) -> None:
    """The same steps as ServerProvisionWorkflow, called directly (no durability, no retries)."""
    acts.power(PowerRequest(server=ref, action="GracefulShutdown", done_when="Off"))
    acts.wait_power(PowerWait(server=ref, target="Off", timeout_s=120))
    acts.verify_image(ImageCheck(image=image))
    acts.virtual_media(MediaRequest(server=ref, image_url=image.url))
    acts.set_boot(BootRequest(server=ref, target="Cd", enabled="Once", mode="UEFI"))
    acts.power(PowerRequest(server=ref, action="On", done_when="On"))
    acts.wait_power(PowerWait(server=ref, target="On", timeout_s=120))
    delay = 0.5
    while not any(b["identity"] == ref.identity for b in emu.boots()):
        time.sleep(delay)
        delay = min(delay * 1.5, 5)
    acts.virtual_media(MediaRequest(server=ref, image_url=None))
    acts.set_boot(BootRequest(server=ref, target="Hdd", enabled="Continuous", mode="UEFI"))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=10)
    args = ap.parse_args()
    n = args.servers
    os.environ["APEIRO_BENCH_BMC_PASSWORD"] = PASSWORD
    with tempfile.TemporaryDirectory() as tmp:
        temporal = TemporalDevServer(headless=True, persistent=False)
        relay = OsCallbackRelay(temporal=temporal)
        emu = RedfishEmulator(2 * n, username="admin", password=PASSWORD, seed="benchprov", boot_seconds=2.0)
        emu.callback_from = relay
        land = Landscape([temporal, relay, emu, ImageServer(size_mib=16)], state_dir=Path(tmp) / "land")
        with land.running():
            images = land.part("images").endpoints
            image = ImageSpec(url=images["url"], sha256=images["sha256"])
            creds = BmcCredentials(username="admin", password_ref="env:APEIRO_BENCH_BMC_PASSWORD")
            site = SiteDefinition(
                name="benchprov",
                credentials={"c": creds},
                default_credentials="c",
                bmcs=[BmcEndpointSpec(url=emu.url, name="bench")],
            )
            conn = site.connections()[0]
            servers = [
                ServerSummary(identity=str(s["uuid"]), bmc_url=conn.url, system_path=f"/redfish/v1/Systems/{s['uuid']}")
                for s in emu.systems
            ]
            acts = RedfishActivities(store=FileInventoryStore(Path(tmp) / "store"))
            client = await Client.connect(temporal.endpoints["address"], data_converter=data_converter())
            with ThreadPoolExecutor(max(32, args.concurrency * 2)) as pool:
                worker = Worker(
                    client,
                    task_queue="bench-redfish",
                    workflows=[ServerProvisionFleetWorkflow, ServerProvisionWorkflow],
                    activities=acts.all(),
                    activity_executor=pool,
                    max_concurrent_activities=max(32, args.concurrency * 2),
                    workflow_runner=workflow_runner(),
                )
                async with worker:
                    start = time.perf_counter()
                    result: ProvisionFleetResult = await client.execute_workflow(
                        ServerProvisionFleetWorkflow.run,
                        ProvisionFleetInput(
                            servers=servers[:n],
                            site=site,
                            concurrency=args.concurrency,
                            spec=ProvisionSpec(image=image, report_in_timeout_s=600),
                        ),
                        id=f"bench-fleet-{int(time.time())}",
                        task_queue="bench-redfish",
                    )
                    wf_s = time.perf_counter() - start
            refs = [ServerRef(identity=s.identity, bmc=conn, system_path=s.system_path) for s in servers[n:]]
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(lambda r: direct_one(acts, emu, r, image), refs))
            direct_s = time.perf_counter() - start
    print(f"servers: {n}, concurrency {args.concurrency}, image 16 MiB, simulated OS boot 2 s after power-on")
    print(
        f"workflow provision+image: {wf_s:.1f} s "
        f"({len(result.provisioned)} ok, {len(result.failed)} failed), "
        f"{wf_s / n:.2f} s per server"
    )
    print(f"direct script, {args.concurrency} threads: {direct_s:.1f} s")
    print(f"ratio workflow/direct: {wf_s / direct_s:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
    exit_cleanly(0)  # sdk-python issue 300: no interpreter teardown with Temporal's threads alive
