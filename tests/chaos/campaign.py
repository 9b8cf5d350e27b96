"""Crash campaign: pipelines (core steps + cluster lifecycle) on two `apeiro worker` processes, one of
them killed with SIGKILL or stopped with SIGTERM (a rolling restart) at a random point; and Temporal
dev-server restarts mid-pipeline.

    python -m tests.chaos.campaign --runs 10 [--terms 10] [--restarts 3] [--seed 7]

prints one line per run and a summary: runs, kills, SIGTERMs, restarts, completed, duplicates, and the
recovery time per disruption kind (median and max; see tests/chaos/recovery.py for what counts as
progress again). The worker to kill or stop is one running an activity of the run when there is one. A duplicate is a side effect on the garden API that a clean run does not have: a
second successful Shoot create, or a Shoot spec changed more often (metadata.generation higher) than
in the clean baseline run.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from tests.chaos.common import (
    CrashCommand,
    CrashRun,
    CrashTally,
    create_cluster_step,
    disrupted_run,
    run_fields,
    run_plan,
    stop_a_worker,
)
from tests.chaos.harness import ChaosLandscape, WorkerPool, campaign_workers, chaos_landscape
from tests.chaos.recovery import run_workflow_ids
from tests.support import pipeline
from workers.cli.pipeline import start_pipeline

SHOOTS = "/apis/core.gardener.cloud/v1beta1/namespaces/garden-edge/shoots"
QUEUES = "pipeline,gardener"


def crash_pipeline() -> dict[str, Any]:
    """Heartbeating core steps, a fan-out, and the cluster lifecycle (create, then upgrade)."""
    return pipeline(
        name="crash-campaign",
        inputs={"site": {"type": "string"}},
        steps=[
            {
                "name": "prepare",
                "uses": "core.echo",
                "with": {"values": {"site": "${{ inputs.site }}"}, "sleep": "2s"},
            },
            {
                "name": "fan",
                "uses": "core.echo",
                "needs": ["prepare"],
                "forEach": "[1, 2, 3, 4, 5, 6]",
                "maxParallel": 3,
                "with": {"values": {"n": "${{ item }}"}, "sleep": "1s"},
            },
            create_cluster_step(
                "create_cluster",
                {
                    "name": "pool1",
                    "machine_type": "local-small",
                    "image_version": "1592.9.0",
                    "minimum": 1,
                    "maximum": 3,
                },
                needs=["prepare"],
            ),
            {"name": "soak", "uses": "core.echo", "needs": ["create_cluster"], "with": {"sleep": "2s"}},
            {
                "name": "upgrade_cluster",
                "uses": "cluster.upgrade",
                "needs": ["create_cluster"],
                "with": {
                    "site": "${{ inputs.site }}",
                    "name": "${{ steps.create_cluster.outputs.name }}",
                    "project_namespace": "${{ steps.create_cluster.outputs.namespace }}",
                    "target_version": "1.31.4",
                    "machine_image_version": "latest",
                },
            },
        ],
        outputs={"version": "steps.upgrade_cluster.outputs.kubernetes_version"},
    )


@dataclass(kw_only=True)
class RunRecord(CrashRun):
    site: str
    creates: int
    patches: int
    generation: int


@dataclass
class Report(CrashTally):
    restarts: int = 0
    baseline_patches: int = 0
    baseline_generation: int = 0

    def summary(self) -> str:
        disruptions = f"kills={self.kills} terms={self.terms} restarts={self.restarts}"
        return (
            self.tally_line("crash campaign", disruptions) + " "
            f"(clean run {self.baseline_seconds:.1f}s, {self.baseline_patches} shoot patches, "
            f"generation {self.baseline_generation})\n" + self.recovery.summary(self.baseline_seconds)
        )


def shoot_generation(land: ChaosLandscape, site: str) -> int:
    body = httpx.get(f"{land.garden.url}{SHOOTS}/{site}", timeout=10).json()
    return int(body.get("metadata", {}).get("generation", 0))


async def result_surviving_restarts(client: Client, handle: WorkflowHandle[Any, Any], timeout: float) -> Any:
    """Wait for the result; a restarting server answers 'unavailable' for a moment."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.wait_for(
                client.get_workflow_handle(handle.id).result(), max(1.0, deadline - time.monotonic())
            )
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run_one(
    land: ChaosLandscape,
    client: Client,
    pool: WorkerPool,
    rng: random.Random,
    disruption: str,
    window: float,
    report: Report,
    timeout: float = 240,
) -> RunRecord:
    site = f"c{uuid.uuid4().hex[:8]}"
    mark = len(land.proxy.writes)
    t0 = time.monotonic()
    handle = await start_pipeline(client, crash_pipeline(), {"site": site})
    at = rng.uniform(0.3, max(0.5, window)) if disruption != "none" else 0.0

    fired_at = datetime.now(UTC)

    async def disrupt() -> None:
        nonlocal fired_at
        if disruption == "restart":
            fired_at = datetime.now(UTC)
            await asyncio.to_thread(land.restart_temporal)
            report.restarts += 1
        else:
            fired_at = await stop_a_worker(client, pool, rng, handle.id, disruption, report)

    end = await disrupted_run(
        lambda: result_surviving_restarts(client, handle, timeout),
        None if disruption == "none" else disrupt,
        at,
        started=t0,
    )
    completed = end.completed
    writes = land.proxy.writes[mark:]
    # The cluster lifecycle creates its Shoot by server-side apply (PATCH answered 201) or POST.
    creates = sum(1 for w in writes if w.status == 201 and w.path in (SHOOTS, f"{SHOOTS}/{site}"))
    patches = sum(1 for w in writes if w.method == "PATCH" and w.path == f"{SHOOTS}/{site}" and w.status == 200)
    generation = shoot_generation(land, site)
    duplicates = max(0, creates - 1) if completed else 0
    if report.baseline_generation:
        duplicates += max(0, generation - report.baseline_generation)
    fields = await run_fields(client, pool, run_workflow_ids(handle.id, end.result), disruption, at, end, fired_at)
    return RunRecord(
        site=site, creates=creates, patches=patches, generation=generation, duplicates=duplicates, **fields
    )


async def campaign(runs: int, restarts: int, seed: int, state: Path, verbose: bool = True, terms: int = 0) -> Report:
    rng = random.Random(seed)
    report = Report()
    with chaos_landscape(state) as land:
        async with campaign_workers(land.temporal.address, land.env(), QUEUES, state) as (pool, client, logs):
            base = await run_one(land, client, pool, rng, "none", 0, report)
            if not base.completed:
                raise RuntimeError(f"the clean baseline run failed: {base.error}; worker logs in {logs}")
            # A second clean run: the first pays for imports and caches; disruptions are timed
            # against the faster one so that they land inside the run.
            second = await run_one(land, client, pool, rng, "none", 0, report)
            if second.completed and second.seconds < base.seconds:
                base = second
            report.baseline_seconds, report.baseline_patches = base.seconds, base.patches
            report.baseline_generation = base.generation
            if verbose:
                print(f"baseline: {json.dumps(asdict(base))}", flush=True)
            plan = ["kill"] * runs + ["term"] * terms + ["restart"] * restarts
            rng.shuffle(plan)
            window = 0.8 * base.seconds
            await run_plan(plan, lambda kind: run_one(land, client, pool, rng, kind, window, report), report, verbose)
    return report


def main() -> int:
    parser = CrashCommand(__doc__, runs=10)
    parser.add_argument("--restarts", type=int, default=3, help="pipelines with a dev-server restart")
    parser.add_argument("--state", type=Path, default=None, help="state directory (default: a temp dir)")
    args = parser.parse_args()
    return parser.run_campaign(
        args.seed,
        "apeiro-chaos-",
        lambda tmp: campaign(args.runs, args.restarts, args.seed, args.state or tmp, terms=args.terms),
    )


if __name__ == "__main__":
    raise SystemExit(main())
