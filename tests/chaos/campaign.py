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

import argparse
import asyncio
import contextlib
import json
import random
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from tests.chaos.harness import ChaosLandscape, WorkerPool, chaos_landscape, retried_activities
from tests.chaos.recovery import RecoveryFigures, busy_worker_pids, recovery_after, run_workflow_ids
from workers.cli.pipeline import start_pipeline
from workers.config import data_converter

SHOOTS = "/apis/core.gardener.cloud/v1beta1/namespaces/garden-edge/shoots"
KIND_LABEL = {"kill": "kill -9", "term": "SIGTERM", "restart": "dev-server restart"}
QUEUES = "pipeline,gardener"


def crash_pipeline() -> dict[str, Any]:
    """Heartbeating core steps, a fan-out, and the cluster lifecycle (create, then upgrade)."""
    return {
        "apiVersion": "apeiro.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "crash-campaign"},
        "spec": {
            "inputs": {"site": {"type": "string"}},
            "steps": [
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
                {
                    "name": "create_cluster",
                    "uses": "cluster.create",
                    "needs": ["prepare"],
                    "with": {
                        "site": "${{ inputs.site }}",
                        "timeout_seconds": 600,
                        "cluster": {
                            "name": "${{ inputs.site }}",
                            "project_namespace": "garden-edge",
                            "cloud_profile": "local",
                            "region": "local",
                            "credentials_binding": "local-credentials",
                            "provider_type": "local",
                            "kubernetes_version": "1.30.8",
                            "workers": [
                                {
                                    "name": "pool1",
                                    "machine_type": "local-small",
                                    "image_version": "1592.9.0",
                                    "minimum": 1,
                                    "maximum": 3,
                                }
                            ],
                        },
                    },
                },
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
            "outputs": {"version": "steps.upgrade_cluster.outputs.kubernetes_version"},
        },
    }


@dataclass
class RunRecord:
    site: str
    disruption: str  # "none", "kill", "term", "restart"
    at_seconds: float
    completed: bool
    seconds: float
    creates: int
    patches: int
    generation: int
    duplicates: int
    error: str = ""
    #: Activities that needed a second attempt (the disruption hit work in flight).
    retried: int = 0
    #: Seconds from the disruption until the interrupted work ran again (None: nothing interrupted).
    recovery_s: float | None = None
    recovery: str = ""


@dataclass
class Report:
    runs: int = 0
    kills: int = 0
    terms: int = 0
    restarts: int = 0
    completed: int = 0
    duplicates: int = 0
    interrupted: int = 0
    missed: int = 0
    baseline_seconds: float = 0.0
    baseline_patches: int = 0
    baseline_generation: int = 0
    records: list[RunRecord] = field(default_factory=list)
    recovery: RecoveryFigures = field(default_factory=RecoveryFigures)

    def summary(self) -> str:
        return (
            f"crash campaign: runs={self.runs} kills={self.kills} terms={self.terms} restarts={self.restarts} "
            f"completed={self.completed} duplicates={self.duplicates} "
            f"runs-with-retried-activities={self.interrupted} "
            f"(+{self.missed} runs that ended before their disruption was due) "
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

    fired = asyncio.Event()
    fired_at = datetime.now(UTC)

    async def disrupt() -> None:
        nonlocal fired_at
        await asyncio.sleep(at)
        busy = await busy_worker_pids(client, handle.id) if disruption in ("kill", "term") else set()
        fired_at = datetime.now(UTC)
        fired.set()
        if disruption == "kill":
            pool.kill_one(rng, busy)
            report.kills += 1
        elif disruption == "term":
            pool.term_one(rng, busy)
            report.terms += 1
        elif disruption == "restart":
            await asyncio.to_thread(land.restart_temporal)
            report.restarts += 1

    task = asyncio.create_task(disrupt())
    error = ""
    completed = False
    result: Any = None
    try:
        result = await result_surviving_restarts(client, handle, timeout)
        completed = isinstance(result, dict) and result.get("state") == "succeeded"
        if not completed:
            error = f"pipeline ended {result.get('state') if isinstance(result, dict) else result!r}"
    except Exception as exc:  # a campaign records failures instead of stopping at the first
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - t0
    if disruption != "none" and not fired.is_set():
        # The run ended before the disruption was due: nothing was disrupted, so it does not count.
        task.cancel()
        report.missed += 1
        disruption = f"{disruption} (after the end: not done)"
    with contextlib.suppress(asyncio.CancelledError):
        await task
    writes = land.proxy.writes[mark:]
    # The cluster lifecycle creates its Shoot by server-side apply (PATCH answered 201) or POST.
    creates = sum(1 for w in writes if w.status == 201 and w.path in (SHOOTS, f"{SHOOTS}/{site}"))
    patches = sum(1 for w in writes if w.method == "PATCH" and w.path == f"{SHOOTS}/{site}" and w.status == 200)
    generation = shoot_generation(land, site)
    duplicates = max(0, creates - 1) if completed else 0
    if report.baseline_generation:
        duplicates += max(0, generation - report.baseline_generation)
    # Keep two workers for the next run (a worker stopping after SIGTERM has exited by now or soon).
    exit_codes = pool.reap()
    if any(exit_codes):
        error = error or f"a worker stopped with SIGTERM exited {exit_codes}"
    missing = 2 - len(pool.alive())
    if missing > 0:
        pool.start(missing)
    retried = await retried_activities(client, handle.id, result) if completed else 0
    recovery = None
    if completed and fired.is_set():
        recovery = await recovery_after(client, run_workflow_ids(handle.id, result), fired_at)
    return RunRecord(
        site,
        disruption,
        round(at, 2),
        completed,
        round(seconds, 1),
        creates,
        patches,
        generation,
        duplicates,
        error,
        retried,
        None if recovery is None or recovery.seconds is None else round(recovery.seconds, 2),
        recovery.describe() if recovery else "",
    )


async def campaign(runs: int, restarts: int, seed: int, state: Path, verbose: bool = True, terms: int = 0) -> Report:
    rng = random.Random(seed)
    report = Report()
    with chaos_landscape(state) as land:
        logs = state / "workers"
        logs.mkdir(exist_ok=True)
        pool = WorkerPool(land.env(), QUEUES, logs)
        pool.start(2)
        try:
            client = await Client.connect(land.temporal.address, data_converter=data_converter())
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
            attempts, limit = 0, 3 * len(plan)
            while plan and attempts < limit:
                attempts += 1
                disruption = plan[0]
                rec = await run_one(land, client, pool, rng, disruption, 0.8 * base.seconds, report)
                if "not done" in rec.disruption:  # try this disruption again with a new run
                    if verbose:
                        print(json.dumps(asdict(rec)), flush=True)
                    continue
                plan.pop(0)
                report.runs += 1
                report.completed += int(rec.completed)
                report.duplicates += rec.duplicates
                report.interrupted += int(rec.retried > 0)
                report.records.append(rec)
                if rec.completed:
                    report.recovery.add(KIND_LABEL[disruption], rec.recovery_s)
                if verbose:
                    print(json.dumps(asdict(rec)), flush=True)
        finally:
            pool.stop()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="pipelines with one worker killed (kill -9)")
    parser.add_argument("--terms", type=int, default=0, help="pipelines with one worker stopped by SIGTERM")
    parser.add_argument("--restarts", type=int, default=3, help="pipelines with a dev-server restart")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--state", type=Path, default=None, help="state directory (default: a temp dir)")
    args = parser.parse_args()
    print(f"seed={args.seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="apeiro-chaos-") as tmp:
        report = asyncio.run(campaign(args.runs, args.restarts, args.seed, args.state or Path(tmp), terms=args.terms))
    print(report.summary())
    return 0 if report.completed == report.runs and report.duplicates == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
