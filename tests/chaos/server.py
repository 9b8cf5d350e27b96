"""Crash campaign, server lifecycle: the server-site pipeline (discover, provision and image every
server of an emulated BMC) on two `apeiro worker --queues pipeline,redfish` processes, one of them
killed with SIGKILL (or stopped with SIGTERM) at a random moment.

    python -m tests.chaos.server --runs 6 [--terms 2] [--seed 7]

The workers reach the BMC (sushy-emulator behind the landscape's sidecar) through the campaign's
counting proxy, which records every write with its answer. Side effects counted per run, per kind:

- ``power``: ``ComputerSystem.Reset`` actions answered 2xx
- ``insert`` / ``eject``: ``VirtualMedia.InsertMedia`` / ``EjectMedia`` answered 2xx
- ``patch``: PATCHes answered 2xx (boot override, BIOS settings)

What idempotency allows is what the two clean runs did (the first on a fresh BMC, the second on one
already provisioned; per kind the larger of the two). A duplicate is each write of a kind beyond
that: a power action or a media insert repeated because a killed worker's activity ran again
without first checking what the BMC already did. Every run must complete with none.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client

from definitions.library import EXAMPLES
from definitions.server.messages import provision_workflow_id
from definitions.validate import load_yaml
from landscape.landscape import Landscape
from landscape.redfish import RedfishEmulator, server_parts
from landscape.temporal import TemporalDevServer
from tests.chaos.common import CrashCommand, CrashRun, CrashTally, disrupted_run, run_fields, run_plan, stop_a_worker
from tests.chaos.harness import REPO, CountingProxy, WorkerPool, campaign_workers, counting_proxy
from tests.chaos.recovery import run_workflow_ids
from workers.cli.pipeline import start_pipeline

QUEUES = "pipeline,redfish"
KINDS = ("power", "insert", "eject", "patch")


def write_kind(method: str, path: str) -> str | None:
    if method == "POST" and path.endswith("ComputerSystem.Reset"):
        return "power"
    if method == "POST" and path.endswith("VirtualMedia.InsertMedia"):
        return "insert"
    if method == "POST" and path.endswith("VirtualMedia.EjectMedia"):
        return "eject"
    if method == "PATCH":
        return "patch"
    return None


def count_writes(proxy: CountingProxy, mark: int) -> dict[str, int]:
    with proxy.lock:
        writes = proxy.writes[mark:]
    counts: Counter[str] = Counter()
    for w in writes:
        kind = write_kind(w.method, w.path)
        if kind and 200 <= w.status < 300:
            counts[kind] += 1
    return {k: counts[k] for k in KINDS}


@dataclass(kw_only=True)
class ServerRun(CrashRun):
    writes: dict[str, int]


@dataclass
class ServerReport(CrashTally):
    allowed: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        line = self.tally_line("server crash campaign", f"kills={self.kills} terms={self.terms}")
        return (
            f"{line} (clean run {self.baseline_seconds:.1f}s, writes allowed per run {self.allowed})\n"
            + self.recovery.summary(self.baseline_seconds)
        )


@dataclass
class ServerLandscape:
    temporal: TemporalDevServer
    land: Landscape
    proxy: CountingProxy
    state: Path

    def site(self) -> dict[str, Any]:
        emu = self.land.part("redfish")
        assert isinstance(emu, RedfishEmulator)
        site = emu.site_definition(f"chaos-{uuid.uuid4().hex[:6]}")
        site["bmcs"] = [{"url": self.proxy.url, "name": "chaos-bmc"}]
        return site

    def inputs(self) -> dict[str, Any]:
        images = self.land.part("images").endpoints
        return {
            "serverSite": self.site(),
            "gardenLinuxImage": {"url": images["url"], "sha256": images["sha256"]},
            "registerTarget": "none",
        }

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.temporal.env(),
            "APEIRO_INVENTORY_DIR": str(self.state / "inventory"),
            "PYTHONPATH": str(REPO),
        }


@contextmanager
def server_landscape(state: Path, systems: int = 2) -> Iterator[ServerLandscape]:
    temporal = TemporalDevServer(headless=True, persistent=True)
    temporal.start(state / "temporal")
    try:
        parts = server_parts(temporal, systems=systems)
        emu = parts[1]
        assert isinstance(emu, RedfishEmulator)
        emu.boot_seconds, emu.firmware_seconds = 0.5, 1.0
        land = Landscape(parts, state_dir=state / "server")
        with land.running(), counting_proxy(emu.url) as proxy:
            yield ServerLandscape(temporal, land, proxy, state)
    finally:
        temporal.stop()


def server_pipeline() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml((EXAMPLES / "server-site.yaml").read_text(), "server-site.yaml")
    return data


def run_ids(workflow_id: str, result: Any) -> list[str]:
    """The pipeline, its steps' children, and each server's provisioning workflow (a grandchild with
    the deterministic id ``server-provision-<identity>``: its latest run is this run's)."""
    ids = run_workflow_ids(workflow_id, result)
    outputs = result.get("outputs") if isinstance(result, dict) else None
    identities = outputs.get("servers") if isinstance(outputs, dict) else None
    return ids + [provision_workflow_id(str(i)) for i in identities or []]


async def run_one(
    land: ServerLandscape,
    client: Client,
    pool: WorkerPool,
    rng: random.Random,
    disruption: str,
    window: float,
    report: ServerReport,
    timeout: float = 300,
) -> ServerRun:
    mark = len(land.proxy.writes)
    t0 = time.monotonic()
    handle = await start_pipeline(client, server_pipeline(), land.inputs())
    at = rng.uniform(0.5, max(0.6, window)) if disruption != "none" else 0.0
    fired_at = datetime.now(UTC)

    async def disrupt() -> None:
        nonlocal fired_at
        fired_at = await stop_a_worker(client, pool, rng, handle.id, disruption, report)

    end = await disrupted_run(
        lambda: asyncio.wait_for(handle.result(), timeout),
        None if disruption == "none" else disrupt,
        at,
        error_chars=300,
        started=t0,
    )
    writes = count_writes(land.proxy, mark)
    duplicates = sum(max(0, writes[k] - report.allowed.get(k, writes[k])) for k in KINDS) if end.completed else 0
    fields = await run_fields(client, pool, run_ids(handle.id, end.result), disruption, at, end, fired_at)
    return ServerRun(writes=writes, duplicates=duplicates, **fields)


async def server_campaign(
    runs: int, seed: int, state: Path, verbose: bool = True, terms: int = 0, systems: int = 2
) -> ServerReport:
    rng = random.Random(seed)
    report = ServerReport()
    with server_landscape(state, systems) as land:
        async with campaign_workers(land.temporal.address, land.env(), QUEUES, state) as (pool, client, logs):
            clean = [await run_one(land, client, pool, rng, "none", 0, report) for _ in range(2)]
            if not all(c.completed for c in clean):
                raise RuntimeError(f"a clean run failed: {[c.error for c in clean]}; worker logs in {logs}")
            report.allowed = {k: max(c.writes[k] for c in clean) for k in KINDS}
            fastest = min(c.seconds for c in clean)
            report.baseline_seconds = fastest
            if verbose:
                for c in clean:
                    print(f"clean: {json.dumps(asdict(c))}", flush=True)
            plan = ["kill"] * runs + ["term"] * terms
            rng.shuffle(plan)
            await run_plan(
                plan, lambda kind: run_one(land, client, pool, rng, kind, 0.8 * fastest, report), report, verbose
            )
    return report


def main() -> int:
    parser = CrashCommand(__doc__, runs=6)
    parser.add_argument("--systems", type=int, default=2, help="servers behind the emulated BMC")
    args = parser.parse_args()
    return parser.run_campaign(
        args.seed,
        "apeiro-chaos-server-",
        lambda tmp: server_campaign(args.runs, args.seed, tmp, terms=args.terms, systems=args.systems),
    )


if __name__ == "__main__":
    raise SystemExit(main())
