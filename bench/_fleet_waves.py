"""One level of ``bench.fleet``: a firmware wave over N emulated servers, or a cluster upgrade wave over
M shoots, measured against the simulated work of the same run.

Each level starts its own peer (an emulator with N BMCs, or a garden API with M fresh shoots) against the
benchmark's shared dev server, so no level sees another's targets. Setup (discovery, shoot creation) is
timed apart and not counted.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from temporalio.client import Client
from temporalio.worker import Worker

from activities.freeze import ACTIVITIES as FREEZE
from activities.redfish.activities import RedfishActivities
from activities.redfish.store import FileInventoryStore
from bench.cluster import spec as cluster_spec
from definitions.cluster import ClusterCreateInput, ClusterCreateResult, ClusterSpec, GardenRef, MaintenanceWindow
from definitions.rollout import RolloutInput, RolloutResult, RolloutStatus
from definitions.server import DiscoverInput, DiscoverResult, SiteDefinition
from landscape.gardener import samples
from landscape.gardener.gardenlet import RECONCILE_TASKS
from landscape.kubeapi.part import KubeApiServer
from landscape.landscape import Landscape
from landscape.redfish import ImageServer, RedfishEmulator
from workers.gardener import contents as gardener_contents
from workers.redfish import workflows as redfish_workflows
from workers.worker import workflow_runner
from workflows.rollout import FleetRolloutWorkflow
from workflows.server import ServerDiscoveryWorkflow

PASSWORD = "bench-fleet-password"
MAX_IN_FLIGHT = 10
WAVES: list[int | str] = [1, "10%", "100%"]
TASK_SECONDS = 60.0
BENCH = "bench (workers + client)"


class Cpu:
    """CPU seconds per wall second (cores) of each role's processes over a span: what saturates first."""

    def __init__(self, roles: dict[str, list[int]]) -> None:
        self.roles = {role: [psutil.Process(p) for p in pids] for role, pids in roles.items()}
        self.t0, self.c0 = time.perf_counter(), self.sample()

    def sample(self) -> dict[str, float]:
        def cpu(p: psutil.Process) -> float:
            try:
                t = p.cpu_times()
            except psutil.Error:
                return 0.0
            return t.user + t.system + t.children_user + t.children_system

        return {role: sum(cpu(p) for p in ps) for role, ps in self.roles.items()}

    def cores(self) -> dict[str, float]:
        span = max(1e-9, time.perf_counter() - self.t0)
        now = self.sample()
        return {role: (now[role] - self.c0[role]) / span for role in now}


@dataclass
class Wave:
    """A rollout at one level and its baseline: per wave ceil(targets / maxInFlight) x the simulated
    work of one target, plus the soaks between waves."""

    kind: str
    expected: int
    result: RolloutResult
    total: float
    waves: list[float]
    unit_s: float
    soak_s: float
    setup_s: float
    work: str = ""  # what one target's simulated work is
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def sizes(self) -> list[int]:
        return [len(w.targets) for w in self.result.waves]

    @property
    def baseline(self) -> float:
        work = sum(math.ceil(n / MAX_IN_FLIGHT) * self.unit_s for n in self.sizes)
        return work + self.soak_s * (len(self.sizes) - 1)

    @property
    def overhead(self) -> float:
        return self.total - self.baseline

    @property
    def ms_per_target(self) -> float:
        return self.overhead / max(1, sum(self.sizes)) * 1000

    @property
    def complete(self) -> bool:
        return sum(self.sizes) == self.expected and not self.result.failed

    def progress(self) -> str:
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in sorted(self.cpu.items(), key=lambda kv: -kv[1]))
        return (
            f"{self.kind}, {self.expected} targets: waves {self.sizes} took "
            + "/".join(f"{w:.1f}" for w in self.waves)
            + f" s; total {self.total:.1f} s vs baseline {self.baseline:.1f} s ({self.total / self.baseline:.2f}x), "
            f"overhead {self.overhead:.1f} s = {self.ms_per_target:.0f} ms per target; state {self.result.state}: "
            f"{len(self.result.succeeded)} succeeded, {len(self.result.in_sync)} in sync, {len(self.result.failed)} "
            f"failed; setup (not counted) {self.setup_s:.1f} s\n  CPU by process (cores): {cpu}"
        )


async def follow(client: Client, wid: str, queue: str, inp: RolloutInput) -> tuple[RolloutResult, float, list[float]]:
    """Run a rollout; return its result, the total time and each wave's time (running -> done)."""
    start = time.perf_counter()
    handle = await client.start_workflow(
        "FleetRolloutWorkflow", inp, id=wid, task_queue=queue, result_type=RolloutResult
    )
    began: dict[int, float] = {}
    ended: dict[int, float] = {}
    task = asyncio.ensure_future(handle.result())
    while not task.done():
        try:
            st = await handle.query("status", result_type=RolloutStatus)
        except Exception:  # not started yet
            st = RolloutStatus()
        now = time.perf_counter()
        for w in st.waves:
            if w.state == "running":
                began.setdefault(w.index, now)
            if w.state in ("done", "stopped"):
                began.setdefault(w.index, now)
                ended.setdefault(w.index, now)
        await asyncio.wait([task], timeout=0.1)
    result = task.result()
    total = time.perf_counter() - start
    for w in result.waves:
        ended.setdefault(w.index, time.perf_counter())
    return result, total, [ended[i] - began.get(i, ended[i]) for i in sorted(ended)]


async def servers(
    client: Client, tmp: Path, n: int, firmware_s: float, soak_s: float, temporal_pids: list[int]
) -> Wave:
    """The firmware wave over ``n`` emulated servers, each behind its own emulated BMC."""
    emu = RedfishEmulator(
        n,
        username="admin",
        password=PASSWORD,
        seed=f"bench-fleet-{uuid.uuid4().hex[:4]}",
        firmware_seconds=firmware_s,
        bmc_per_system=True,
    )
    land = Landscape([emu, ImageServer(size_mib=1)], state_dir=tmp)
    with land.running():
        base = land.part("images").endpoints["base"]
        os.environ["APEIRO_BENCH_FLEET_PASSWORD"] = PASSWORD
        site = SiteDefinition.model_validate(
            {
                "name": "bench-fleet",
                "credentials": {"c": {"username": "admin", "password_ref": "env:APEIRO_BENCH_FLEET_PASSWORD"}},
                "default_credentials": "c",
                "bmcs": [{"url": u, "name": f"bmc-{i}"} for i, u in enumerate(emu.bmc_urls)],
            }
        )
        acts = RedfishActivities(store=FileInventoryStore(tmp / "store"), poll_initial_s=0.2, poll_max_s=1.0)
        with ThreadPoolExecutor(64) as pool:
            async with (
                Worker(
                    client,
                    task_queue="bench-redfish",
                    workflows=redfish_workflows(),
                    activities=acts.all(),
                    activity_executor=pool,
                    max_concurrent_activities=64,
                    workflow_runner=workflow_runner(),
                ),
                Worker(
                    client,
                    task_queue="bench-rollout",
                    workflows=[FleetRolloutWorkflow],
                    activities=list(FREEZE),
                    workflow_runner=workflow_runner(),
                ),
            ):
                t0 = time.perf_counter()
                found: DiscoverResult = await client.execute_workflow(
                    ServerDiscoveryWorkflow.run,
                    DiscoverInput(site=site, concurrency=32),
                    id=f"bench-discover-{uuid.uuid4().hex[:6]}",
                    task_queue="bench-redfish",
                )
                setup = time.perf_counter() - t0
                if len(found.servers) < n:
                    print(f"  setup discovery: {len(found.servers)} of {n} servers in {setup:.1f} s", flush=True)
                for p in found.problems[:10]:  # a miss is the emulator's or ours: say which BMC and why
                    print(f"  discovery problem: {p.name or p.bmc_url}: {p.error_type}: {p.message}", flush=True)
                cpu = Cpu({BENCH: [os.getpid()], "temporal": temporal_pids, "emulated BMCs": emu.pids})
                inp = RolloutInput.model_validate(
                    {
                        "operation": "server.firmware",
                        "with": {
                            "firmware": [
                                {"image_uri": f"{base}/bios-2.0.0.bin", "component": "BIOS", "version": "2.0.0"}
                            ],
                            "power_timeout_s": 120,
                        },
                        "site": site.model_dump(),
                        "serverQueue": "bench-redfish",
                        "rollout": {
                            "selector": {"kind": "server"},
                            "waves": WAVES,
                            "maxInFlight": MAX_IN_FLIGHT,
                            "failureBudget": "5%",
                            "gates": [{"type": "soak", "duration": f"{soak_s:g}s"}],
                        },
                    }
                )
                result, total, waves = await follow(client, f"bench-fw-{uuid.uuid4().hex[:6]}", "bench-rollout", inp)
                cores = cpu.cores()  # while the landscape's processes still run
        acts.close()
    work = f"the BMC's update task, {firmware_s:g} s"
    return Wave("firmware", n, result, total, waves, firmware_s, soak_s, setup, work, cores)


def open_window() -> MaintenanceWindow:
    """Open from an hour ago for five hours (Gardener accepts windows of 30 min to 6 h)."""
    now = datetime.now(UTC)
    begin, end = now - timedelta(hours=1), now + timedelta(hours=4)
    return MaintenanceWindow(begin=begin.strftime("%H%M%S+0000"), end=end.strftime("%H%M%S+0000"))


def shoot(name: str, tag: str) -> ClusterSpec:
    return cluster_spec(name, "1.30.8", maintenance=open_window(), labels={"fleet": tag})


async def shoots(client: Client, tmp: Path, m: int, speed: float, soak_s: float, temporal_pids: list[int]) -> Wave:
    """The cluster upgrade wave over ``m`` shoots created for it on the simulated Gardener."""
    api = KubeApiServer(settings={"gardener.speed": str(speed), "gardener.taskSeconds": str(TASK_SECONDS)})
    land = Landscape([api], state_dir=tmp)
    with land.running():
        garden = GardenRef(kubeconfig_ref=f"file:{api.endpoints['kubeconfig']}")
        c = gardener_contents()
        async with Worker(
            client,
            task_queue="bench-gardener",
            workflows=list(c.workflows),
            activities=list(c.activities),
            workflow_runner=workflow_runner(),
        ):
            tag = uuid.uuid4().hex[:6]
            t0 = time.perf_counter()
            sem = asyncio.Semaphore(25)

            async def create(i: int) -> None:
                async with sem:
                    await client.execute_workflow(
                        "ClusterCreateWorkflow",
                        ClusterCreateInput(cluster=shoot(f"fl-{tag}-{i:03d}", tag), garden=garden),
                        id=f"bench-create-{tag}-{i}",
                        task_queue="bench-gardener",
                        result_type=ClusterCreateResult,
                    )

            await asyncio.gather(*(create(i) for i in range(m)))
            setup = time.perf_counter() - t0
            inp = RolloutInput.model_validate(
                {
                    "operation": "cluster.upgrade",
                    "with": {"target_version": "1.31.4"},
                    "garden": garden.model_dump(),
                    "rollout": {
                        "selector": {"namespace": samples.PROJECT_NAMESPACE, "matchLabels": {"fleet": tag}},
                        "waves": WAVES,
                        "maxInFlight": MAX_IN_FLIGHT,
                        "gates": [{"type": "soak", "duration": f"{soak_s:g}s"}],
                    },
                }
            )
            wid = f"bench-up-{tag}"
            cpu = Cpu({BENCH: [os.getpid()], "temporal": temporal_pids, "garden API": api.pids})
            result, total, waves = await follow(client, wid, "bench-gardener", inp)
            cores = cpu.cores()  # while the landscape's processes still run
            first = result.succeeded[0] if result.succeeded else None
            steps = 1
            if first:
                child = await client.get_workflow_handle(f"{wid}/{first}").result()
                steps = max(1, len(child.get("applied", [])))
    unit = steps * len(RECONCILE_TASKS) * TASK_SECONDS / speed
    work = f"{steps} reconcile(s) of {len(RECONCILE_TASKS)} tasks x {TASK_SECONDS:g} s at {speed:g}x = {unit:.2f} s"
    return Wave("upgrade", m, result, total, waves, unit, soak_s, setup, work, cores)
