"""End-to-end provision + image of N emulated servers through the fleet workflow, against a direct
script that calls the same activity functions on the same number of threads, in the same run.

Swept: N = 5, 10, 25, 50 servers (``--levels``; ``--servers N`` is one level; ``--quick``: 2 and 5),
``--concurrency`` (default 10) servers at a time on both paths. The emulator holds 2 systems per
server of every level and round plus 2 for a warm-up: each level provisions fresh systems on both
paths (a provisioned server would skip most steps the second time), and nothing is provisioned twice.
The two paths alternate which goes first from level to level (the shared machine's load drifts);
``--rounds R`` (default 1) runs R alternating pairs per level and compares the summed times.

Both paths run the same steps with the same activity code: power off (skipped: the systems start
Off), verify the 16 MiB image, insert it as virtual media, boot once from CD, power on, wait for the
simulated OS to report in (2 s after power-on), eject, boot from disk. The workflow hears the report
through the callback relay and the ``report_in`` signal; the script polls the emulator every 0.5 s.
sushy-tools' fake driver lands a power change 1-11 s late (random, unseeded; the activity's polls,
backing off, see it at 1, 2.5, 4.75, 8.1 or 13.2 s), so one server takes ~5-16 s of mostly waiting,
and the small levels' ratios are noisy (a level waits for its slowest draw; ``--rounds 3`` evens
them out at three times the run time).

Target: the workflow within 1.25x of the direct script's wall time at every level (as bench.discovery),
and time linear in N: wall = fixed + slope x N, the seconds per added server between consecutive levels
of at least ``--concurrency`` servers flat within 1.25x (s per server itself falls with N: each level
also waits once for its slowest server; below ``--concurrency`` a level is one wave). CPU
seconds per wall second of each process (Temporal dev server, this process = worker + script,
sushy-emulator, its Redfish sidecar, the callback relay, the image server) say what saturates first.

    python -m bench.provision [--quick] [--levels 5 10 25 50] [--servers N] [--concurrency 10] [--rounds 1]

On this 2-core machine (busy, load 5-10): the full sweep takes ~4.5 min, --quick ~1.5 min.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.redfish.activities import RedfishActivities
from activities.redfish.store import FileInventoryStore
from bench._common import add_common_args, exit_cleanly, load, plot, report
from bench._proc import cpu_s
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
QUEUE = "bench-redfish"
TARGET = 1.25  # workflow wall time / direct script's, at every level
LINEAR = 1.25  # largest s per added server / smallest, between levels of >= concurrency servers
IMAGE_MIB = 16
BOOT_S = 2.0


def direct_one(acts: RedfishActivities, emu: RedfishEmulator, ref: ServerRef, image: ImageSpec) -> None:
    """The same steps as ServerProvisionWorkflow, called directly (no durability, no retries)."""
    acts.power(PowerRequest(server=ref, action="GracefulShutdown", done_when="Off"))
    acts.wait_power(PowerWait(server=ref, target="Off", timeout_s=120))
    acts.verify_image(ImageCheck(image=image))
    acts.virtual_media(MediaRequest(server=ref, image_url=image.url))
    acts.set_boot(BootRequest(server=ref, target="Cd", enabled="Once", mode="UEFI"))
    acts.power(PowerRequest(server=ref, action="On", done_when="On"))
    acts.wait_power(PowerWait(server=ref, target="On", timeout_s=120))
    deadline = time.monotonic() + 600  # the workflow's report_in_timeout_s
    while not any(b["identity"] == ref.identity for b in emu.boots()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{ref.identity} did not report in within 600 s")
        time.sleep(0.5)
    acts.virtual_media(MediaRequest(server=ref, image_url=None))
    acts.set_boot(BootRequest(server=ref, target="Hdd", enabled="Continuous", mode="UEFI"))


def direct(
    acts: RedfishActivities, emu: RedfishEmulator, refs: list[ServerRef], image: ImageSpec, threads: int
) -> tuple[float, list[str]]:
    """The baseline: every server's steps, `threads` servers at a time; wall seconds and the failures."""

    def one(ref: ServerRef) -> str | None:
        try:
            direct_one(acts, emu, ref, image)
        except Exception as exc:  # reported per server, as the fleet workflow reports its failures
            return f"{ref.identity}: {type(exc).__name__}: {exc}"
        return None

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        errors = [e for e in pool.map(one, refs) if e]
    return time.perf_counter() - start, errors


async def through_workflow(
    client: Client, servers: list[ServerSummary], site: SiteDefinition, image: ImageSpec, concurrency: int
) -> tuple[float, ProvisionFleetResult]:
    start = time.perf_counter()
    result: ProvisionFleetResult = await client.execute_workflow(
        ServerProvisionFleetWorkflow.run,
        ProvisionFleetInput(
            servers=servers,
            site=site,
            concurrency=concurrency,
            spec=ProvisionSpec(image=image, report_in_timeout_s=600),
        ),
        id=f"bench-fleet-{uuid.uuid4().hex[:8]}",
        task_queue=QUEUE,
    )
    return time.perf_counter() - start, result


def cpu_now(roles: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) so far of each role's processes."""

    def one(pid: int) -> float:
        with contextlib.suppress(OSError):  # a process that is gone counts nothing
            return cpu_s(pid)
        return 0.0

    return {role: sum(one(p) for p in pids) for role, pids in roles.items()}


@dataclass
class Tally:
    """One path's wall seconds, failures and CPU seconds by role over a level's rounds."""

    secs: float = 0.0
    failed: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    def add(self, secs: float, failed: list[str], cpu0: dict[str, float], cpu1: dict[str, float]) -> None:
        self.secs += secs
        self.failed += failed
        for k, v in cpu1.items():
            self.cpu[k] = self.cpu.get(k, 0.0) + v - cpu0[k]

    @property
    def cores(self) -> dict[str, float]:
        """CPU seconds per wall second of each role."""
        return {k: v / self.secs for k, v in self.cpu.items()}


def fmt_cores(cores: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(cores.items(), key=lambda kv: -kv[1]))


def busiest(cores: dict[str, float]) -> str:
    name = max(cores, key=lambda k: cores[k])
    return f"{name} {cores[name]:.2f}"


async def run(levels: list[int], concurrency: int, rounds: int, state: Path) -> None:
    temporal = TemporalDevServer(headless=True, persistent=False)
    relay = OsCallbackRelay(temporal=temporal)
    emu = RedfishEmulator(
        2 * sum(levels) * rounds + 2, username="admin", password=PASSWORD, seed="benchprov", boot_seconds=BOOT_S
    )
    emu.callback_from = relay
    images = ImageServer(size_mib=IMAGE_MIB)
    land = Landscape([temporal, relay, emu, images], state_dir=state / "land")
    rows: list[list[object]] = []
    wf_pts: list[tuple[float, float]] = []
    direct_pts: list[tuple[float, float]] = []
    last: dict[str, dict[str, float]] = {}
    with land.running():
        image = ImageSpec(url=images.endpoints["url"], sha256=images.endpoints["sha256"])
        creds = BmcCredentials(username="admin", password_ref="env:APEIRO_BENCH_BMC_PASSWORD")
        site = SiteDefinition(
            name="benchprov",
            credentials={"c": creds},
            default_credentials="c",
            bmcs=[BmcEndpointSpec(url=emu.url, name="bench")],
        )
        conn = site.connections()[0]
        fresh = iter(
            [
                ServerSummary(identity=str(s["uuid"]), bmc_url=conn.url, system_path=f"/redfish/v1/Systems/{s['uuid']}")
                for s in emu.systems
            ]
        )

        def take(n: int) -> list[ServerSummary]:
            """The next n systems nobody has provisioned yet (the emulator holds enough for the run)."""
            return [next(fresh) for _ in range(n)]

        def refs(servers: list[ServerSummary]) -> list[ServerRef]:
            return [ServerRef(identity=s.identity, bmc=conn, system_path=s.system_path) for s in servers]

        emu_pids = {p.name: p.pid for p in emu.processes if p.pid is not None}
        roles = {
            "temporal": temporal.pids,
            "worker+script (this process)": [os.getpid()],
            "sushy-emulator": [emu_pids["sushy-emulator"]],
            "redfish sidecar": [emu_pids["redfish sidecar"]],
            "callback relay": relay.pids,
            "image server": images.pids,
        }
        acts = RedfishActivities(store=FileInventoryStore(state / "store"))
        client = await Client.connect(temporal.endpoints["address"], data_converter=data_converter())
        threads = max(32, concurrency * 2)
        with ThreadPoolExecutor(threads) as pool:
            worker = Worker(
                client,
                task_queue=QUEUE,
                workflows=[ServerProvisionFleetWorkflow, ServerProvisionWorkflow],
                activities=acts.all(),
                activity_executor=pool,
                max_concurrent_activities=threads,
                workflow_runner=workflow_runner(),
            )
            async with worker:

                async def workflow_path(n: int, tally: Tally) -> None:
                    cpu0 = cpu_now(roles)
                    secs, result = await through_workflow(client, take(n), site, image, concurrency)
                    failed = [f"{f.identity}: {f.error_type}: {f.message}" for f in result.failed]
                    tally.add(secs, failed, cpu0, cpu_now(roles))

                async def direct_path(n: int, tally: Tally) -> None:
                    cpu0 = cpu_now(roles)  # off the event loop: the worker stays responsive meanwhile
                    secs, failed = await asyncio.to_thread(direct, acts, emu, refs(take(n)), image, concurrency)
                    tally.add(secs, failed, cpu0, cpu_now(roles))

                # Warm-up, one server each (together): the sandbox's imports, connections, the image's cache.
                await asyncio.gather(workflow_path(1, Tally()), direct_path(1, Tally()))
                for k, n in enumerate(levels):
                    wf, base = Tally(), Tally()
                    for r in range(rounds):  # alternate which path goes first, from round to round and level to level
                        if (k + r) % 2:
                            await workflow_path(n, wf)
                            await direct_path(n, base)
                        else:
                            await direct_path(n, base)
                            await workflow_path(n, wf)
                    ratio = wf.secs / base.secs
                    ok = ratio <= TARGET and not wf.failed and not base.failed
                    wf_s, base_s = wf.secs / rounds, base.secs / rounds
                    rows.append(
                        [
                            n,
                            base_s,
                            wf_s,
                            ratio,
                            base_s / n,
                            wf_s / n,
                            sum(base.cores.values()),
                            sum(wf.cores.values()),
                            busiest(wf.cores),
                            f"{len(wf.failed)}/{len(base.failed)}",
                            "met" if ok else "NOT met",
                        ]
                    )
                    wf_pts.append((n, wf_s))
                    direct_pts.append((n, base_s))
                    last = {"workflow": wf.cores, "direct": base.cores}
                    print(
                        f"{n} servers: direct {base_s:.1f} s, workflow {wf_s:.1f} s"
                        + (f" (mean of {rounds} rounds)" if rounds > 1 else "")
                        + f", ratio {ratio:.2f}x, failed {len(wf.failed)}/{len(base.failed)} (workflow/direct); "
                        + load(),
                        flush=True,
                    )
                    print(f"  CPU by process (cores), workflow path: {fmt_cores(wf.cores)}", flush=True)
                    print(f"  CPU by process (cores), direct path:   {fmt_cores(base.cores)}", flush=True)
                    for err in (wf.failed + base.failed)[:5]:
                        print(f"  failed: {err}", flush=True)
    summarize(levels, concurrency, rounds, rows, wf_pts, direct_pts, last)


def marginal(wf_pts: list[tuple[float, float]], direct_pts: list[tuple[float, float]], concurrency: int) -> str:
    """Linearity: wall = fixed + slope x N. The fixed part (one server's latency, the slowest draw of the
    last wave) makes s per server fall with N, so the check is on the slope: seconds per added server
    between consecutive levels of >= concurrency servers, flat within LINEAR."""

    def slopes(pts: list[tuple[float, float]]) -> list[tuple[str, float]]:
        big = [(n, s) for n, s in pts if n >= concurrency]
        return [(f"{n1:.0f}->{n2:.0f}", (s2 - s1) / (n2 - n1)) for (n1, s1), (n2, s2) in itertools.pairwise(big)]

    wf, base = slopes(wf_pts), slopes(direct_pts)
    if len(wf) < 2:
        return f"needs three levels of >= {concurrency} servers"
    values = [v for _, v in wf]
    spread = max(values) / min(values) if min(values) > 0 else float("inf")
    return (
        f"{'met' if spread <= LINEAR else 'NOT met'} (s per added server, workflow "
        + ", ".join(f"{k}: {v:.2f}" for k, v in wf)
        + f"; largest / smallest {spread:.2f}; direct "
        + ", ".join(f"{k}: {v:.2f}" for k, v in base)
        + ")"
    )


def summarize(
    levels: list[int],
    concurrency: int,
    rounds: int,
    rows: list[list[object]],
    wf_pts: list[tuple[float, float]],
    direct_pts: list[tuple[float, float]],
    last: dict[str, dict[str, float]],
) -> None:
    path = plot(
        "provision",
        f"provision + image of N emulated servers, {concurrency} at a time",
        "servers",
        "wall s",
        {"ServerProvisionFleetWorkflow": wf_pts, f"direct script, {concurrency} threads": direct_pts},
    )
    linear = marginal(wf_pts, direct_pts, concurrency)
    per_level = ", ".join(f"{r[0]}: {r[-1]}" for r in rows)
    saturated = "n/a"
    if last:
        wf, base = last["workflow"], last["direct"]
        total, top = sum(wf.values()), max(wf, key=lambda k: wf[k])
        saturated = (
            f"at {levels[-1]} servers, workflow path: {fmt_cores(wf)} (sum {total:.2f} of {os.cpu_count()} cores); "
            f"direct path: {fmt_cores(base)} (sum {sum(base.values()):.2f}). "
            + (
                f"The busiest, {top}, saturates first"
                if total >= 0.8 * (os.cpu_count() or 2)
                else f"No process is near a core: wall time is the emulator's simulated power and boot latencies "
                f"times the waves (N / {concurrency}); {top} takes the most CPU, so it would saturate first "
                "at a higher concurrency"
            )
        )
    report(
        "provision",
        title=f"provision + image ({IMAGE_MIB} MiB image, OS boot {BOOT_S:.0f} s), {concurrency} at a time: "
        f"fleet workflow vs direct script on {concurrency} threads, fresh systems per level"
        + (f", {rounds} alternating rounds each (mean s; ratio of the summed times)" if rounds > 1 else ""),
        header=[
            "servers",
            "direct s",
            "workflow s",
            "ratio",
            "direct s/server",
            "workflow s/server",
            "direct CPU cores",
            "workflow CPU cores",
            "busiest (workflow path)",
            "failed wf/direct",
            f"<= {TARGET}x",
        ],
        rows=rows,
        target=f"baseline (same run): the direct script calling the same activities on {concurrency} threads; "
        f"workflow <= {TARGET}x its wall time at every level, every server provisioned on both paths -- {per_level}; "
        f"time linear in servers (s per added server flat within {LINEAR}x over levels >= {concurrency}) -- {linear}",
        saturates=saturated,
        plot_path=path,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    ap.add_argument("--levels", type=int, nargs="+", help="servers per level (default 5 10 25 50; --quick 2 5)")
    ap.add_argument("--servers", type=int, help="one level of this many servers (as --levels N)")
    ap.add_argument("--concurrency", type=int, default=10, help="servers at a time on both paths (default 10)")
    ap.add_argument(
        "--rounds", type=int, default=1, help="alternating workflow/direct pairs per level, times summed (default 1)"
    )
    args = ap.parse_args()
    if args.levels and args.servers:
        ap.error("give --levels or --servers, not both")
    levels = args.levels or ([args.servers] if args.servers else ([2, 5] if args.quick else [5, 10, 25, 50]))
    if min(levels) < 1 or args.concurrency < 1 or args.rounds < 1:
        ap.error("levels, --concurrency and --rounds must be at least 1")
    os.environ["APEIRO_BENCH_BMC_PASSWORD"] = PASSWORD
    with tempfile.TemporaryDirectory(prefix="bench-provision-") as tmp:
        asyncio.run(run(levels, args.concurrency, args.rounds, Path(tmp)))
    exit_cleanly(0)


if __name__ == "__main__":
    main()
