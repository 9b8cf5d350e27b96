"""Cluster lifecycle figures: `python -m bench.cluster`.

1. Ready detection: the time from the simulated gardenlet writing the ready status (its own log,
   same machine clock) to the create workflow's wait activity noticing it, over N runs, beside the
   same detection by 30-second polling as Gardener's test framework does it. The polling figure is
   computed from the same runs' ready times: a poller that started with the workflow and polls every
   30 s notices at its first poll at or after the ready time (waiting 20 x 30 s for real would
   only add noise to the same arithmetic).
2. Create + upgrade across three minors (1.29 -> 1.32, then the machine image) with the fast clock:
   the total wall time, the time the simulated gardenlet itself needs for those operations, and the
   rest, which is our overhead (Temporal round trips, activities, watches, patches).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.client import Client

from bench._common import exit_cleanly
from definitions.cluster import (
    ClusterCreateInput,
    ClusterCreateResult,
    ClusterSpec,
    ClusterUpgradeInput,
    ClusterUpgradeResult,
    GardenRef,
    MaintenanceWindow,
    WorkerPool,
)
from landscape.gardener import samples
from landscape.gardener.gardenlet import CREATE_TASKS, RECONCILE_TASKS
from landscape.kubeapi.admin import KubeApiAdmin
from landscape.kubeapi.part import KubeApiServer
from landscape.landscape import Landscape
from landscape.temporal import TemporalDevServer
from tests.support import sandboxed_worker
from workers.config import data_converter
from workers.gardener import contents

POLL_INTERVAL = 30.0
TASK_SECONDS = 60.0


def spec(
    name: str, version: str, maintenance: MaintenanceWindow | None = None, labels: dict[str, str] | None = None
) -> ClusterSpec:
    """A provider-local shoot of the samples' project; maintenance open all day unless given."""
    return ClusterSpec(
        name=name,
        project_namespace=samples.PROJECT_NAMESPACE,
        cloud_profile=samples.PROFILE,
        region="local",
        credentials_binding=samples.BINDING,
        provider_type="local",
        kubernetes_version=version,
        workers=[WorkerPool(name="pool1", machine_type="local-small", image_version="1592.9.0")],
        maintenance=maintenance or MaintenanceWindow(begin="000000+0000", end="235959+0000"),
        labels=labels or {},
    )


async def run(runs: int, speed: float) -> None:
    state = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    api = KubeApiServer(settings={"gardener.speed": str(speed), "gardener.taskSeconds": str(TASK_SECONDS)})
    landscape = Landscape([TemporalDevServer(headless=True, persistent=False), api], state_dir=state)
    with landscape.running():
        client = await Client.connect(landscape.part("temporal").endpoints["address"], data_converter=data_converter())
        admin = KubeApiAdmin(api.url)
        garden = GardenRef(kubeconfig_ref=f"file:{api.endpoints['kubeconfig']}")
        queue = f"bench-{uuid.uuid4().hex[:6]}"
        c = contents()
        async with sandboxed_worker(client, queue, c.workflows, c.activities):
            ours: list[float] = []
            polled: list[float] = []
            for i in range(runs):
                name = f"bench-{i}-{uuid.uuid4().hex[:4]}"
                started = time.time()
                result: ClusterCreateResult = await client.execute_workflow(
                    "ClusterCreateWorkflow",
                    ClusterCreateInput(cluster=spec(name, "1.30.8"), garden=garden),
                    id=f"bench-create-{name}",
                    task_queue=queue,
                    result_type=ClusterCreateResult,
                )
                log = [e for e in admin.get("/admin/gardener/ready-log") if e["name"] == name]
                ready_at = log[-1]["time"]
                ours.append(result.ready_observed_at - ready_at)
                since_start = ready_at - started
                polled.append((POLL_INTERVAL - since_start % POLL_INTERVAL) % POLL_INTERVAL)
            med, worst = statistics.median(ours), max(ours)
            pmed, pworst = statistics.median(polled), max(polled)
            print(f"ready detection over {runs} creates (watch from last resourceVersion):")
            print(f"  ours:              median {med * 1000:8.1f} ms   max {worst * 1000:8.1f} ms")
            print(f"  30 s polling:      median {pmed * 1000:8.1f} ms   max {pworst * 1000:8.1f} ms")
            print(f"  ratio (median):    polling / ours = {pmed / med:,.0f}x" if med > 0 else "  ratio: n/a")
            print("  (polling aligned with the workflow start; for operations much longer than 30 s")
            print("   the phase is random and 30 s polling gives median ~15 s, max 30 s)")

            name = f"bench-up-{uuid.uuid4().hex[:4]}"
            t0 = time.time()
            await client.execute_workflow(
                "ClusterCreateWorkflow",
                ClusterCreateInput(cluster=spec(name, "1.29.10"), garden=garden),
                id=f"bench-create-{name}",
                task_queue=queue,
                result_type=ClusterCreateResult,
            )
            t1 = time.time()
            up: ClusterUpgradeResult = await client.execute_workflow(
                "ClusterUpgradeWorkflow",
                ClusterUpgradeInput(
                    name=name,
                    project_namespace=samples.PROJECT_NAMESPACE,
                    target_version="1.32.2",
                    machine_image_version="latest",
                    garden=garden,
                ),
                id=f"bench-upgrade-{name}",
                task_queue=queue,
                result_type=ClusterUpgradeResult,
            )
            t2 = time.time()
            ops = len(up.applied)
            controller = (len(CREATE_TASKS) + ops * len(RECONCILE_TASKS)) * TASK_SECONDS / speed
            total = t2 - t0
            print(
                f"create + upgrade {up.plan.current} -> {' -> '.join(up.plan.versions())} + image "
                f"({ops} upgrade steps), gardenlet speed {speed:g}x:"
            )
            print(f"  total {total:6.2f} s (create {t1 - t0:5.2f} s, upgrade {t2 - t1:5.2f} s)")
            print(
                f"  simulated gardenlet work {controller:6.2f} s; our overhead {total - controller:5.2f} s "
                f"({(total - controller) / total * 100:4.1f}% of the total, "
                f"{(total - controller) / (ops + 1) * 1000:5.0f} ms per operation)"
            )
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--speed", type=float, default=600.0, help="simulated seconds per real second")
    args = parser.parse_args()
    asyncio.run(run(args.runs, args.speed))
    exit_cleanly(0)  # sdk-python issue 300: no interpreter teardown with Temporal's threads alive


if __name__ == "__main__":
    main()
