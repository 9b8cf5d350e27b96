"""Fault campaign: the garden API's fault injection switched on at random during full pipelines.

    python -m tests.chaos.faults --runs 12 [--seed 7]

Each run starts the crash-campaign pipeline (core steps + cluster create + upgrade) on two worker
processes and, at random moments, injects some of:

- ``api-409`` / ``api-429`` / ``api-503``: the next 1-3 writes to Shoots answered with that status
- ``cut-watches``: every open watch connection reset
- ``shoot-error``: the simulated gardenlet reports a retryable Error for a while (Gardener retries)
- ``quota-exceeded``: the shoot goes to Failed with ERR_INFRA_QUOTA_EXCEEDED (nothing can fix it)

Expected: with ``quota-exceeded`` the pipeline fails with a non-retryable message naming
ERR_INFRA_QUOTA_EXCEEDED; otherwise it succeeds. A run that does neither within the deadline hangs,
and the campaign reports it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from landscape.kubeapi.admin import KubeApiAdmin
from landscape.ocm_example import push_example
from tests.chaos.campaign import QUEUES, crash_pipeline
from tests.chaos.common import FaultReport, FaultRun, emit
from tests.chaos.harness import ChaosLandscape, campaign_workers, chaos_landscape
from tests.chaos.ocm import OcmLandscape, ocm_landscape, transport_pipeline
from workers.cli.pipeline import start_pipeline
from workflows.failures import failure_chain

NS = "garden-edge"
TRANSIENT = ("api-409", "api-429", "api-503", "cut-watches", "shoot-error")


def inject(admin: KubeApiAdmin, fault: str, site: str, rng: random.Random) -> None:
    if fault.startswith("api-"):
        admin.inject(int(fault[4:]), count=rng.randint(1, 3), resource="shoots", namespace=NS, retry_after=1)
    elif fault == "cut-watches":
        admin.cut_watches("reset")
    elif fault == "shoot-error":
        admin.post("/admin/gardener/faults", {"fault": "error", "shoot": f"{NS}/{site}", "simSeconds": 900})
    elif fault == "quota-exceeded":
        admin.post("/admin/gardener/faults", {"fault": "quota-exceeded", "shoot": f"{NS}/{site}"})


def fire_at(timed: list[tuple[str, float]], t0: float, inject: Callable[[str], Awaitable[None]]) -> asyncio.Task[None]:
    """Inject each fault at its second after ``t0`` (in time order), in the background."""

    async def fire() -> None:
        for fault, at in sorted(timed, key=lambda x: x[1]):
            await asyncio.sleep(max(0.0, at - (time.monotonic() - t0)))
            await inject(fault)

    return asyncio.create_task(fire())


def failure_text(exc: BaseException) -> tuple[str, bool]:
    """The whole cause chain's messages, and whether the failure was non-retryable."""
    chain = list(failure_chain(exc))
    non_retryable = any(isinstance(cur, ApplicationError) and cur.non_retryable for cur in chain)
    return " | ".join(str(cur) for cur in chain), non_retryable


async def judge(
    injector: asyncio.Task[None],
    handle: WorkflowHandle[Any, Any],
    deadline: float,
    fatal: str | None,
    unexpected_success: str,
) -> tuple[str, str]:
    """(outcome, message) of a run that must fail non-retryably naming ``fatal`` (when given) or succeed;
    the fault ``injector`` stops when the run ends."""
    try:
        return await _judge(handle, deadline, fatal, unexpected_success)
    finally:
        injector.cancel()


async def _judge(
    handle: WorkflowHandle[Any, Any], deadline: float, fatal: str | None, unexpected_success: str
) -> tuple[str, str]:
    try:
        await asyncio.wait_for(handle.result(), deadline)
    except TimeoutError:
        await handle.terminate("fault campaign: hung")
        return "hung", f"no result after {deadline:.0f}s"
    except WorkflowFailureError as exc:
        message, non_retryable = failure_text(exc)
        ok = fatal is not None and non_retryable and fatal in message
        return ("failed-as-expected" if ok else "wrong-outcome"), message
    return ("wrong-outcome", unexpected_success) if fatal else ("succeeded", "")


async def run_one(
    land: ChaosLandscape,
    admin: KubeApiAdmin,
    client: Client,
    rng: random.Random,
    deadline: float,
    quota: bool | None = None,
) -> FaultRun:
    """One pipeline under random faults; ``quota`` forces (True) or forbids (False) the fatal fault."""
    site = f"f{uuid.uuid4().hex[:8]}"
    faults = rng.sample(TRANSIENT, rng.randint(1, 3))
    if (rng.random() < 0.25) if quota is None else quota:
        faults.append("quota-exceeded")
    # Gardener faults are registered for this shoot before it exists; the others fire mid-run.
    timed = [(f, rng.uniform(0.5, 10.0)) for f in faults if f.startswith(("api-", "cut-"))]
    for f in faults:
        if not f.startswith(("api-", "cut-")):
            inject(admin, f, site, rng)
    t0 = time.monotonic()
    handle = await start_pipeline(client, crash_pipeline(), {"site": site})

    async def one(fault: str) -> None:
        await asyncio.to_thread(inject, admin, fault, site, rng)

    fatal = "ERR_INFRA_QUOTA_EXCEEDED" if "quota-exceeded" in faults else None
    outcome, message = await judge(fire_at(timed, t0, one), handle, deadline, fatal, "succeeded despite quota-exceeded")
    admin.clear_faults()
    admin.client.delete("/admin/gardener/faults")
    return FaultRun(site, faults, outcome, round(time.monotonic() - t0, 1), message[:300])


async def fault_campaign(
    runs: int, seed: int, state: Path, deadline: float = 180, verbose: bool = True, quota_plan: list[bool] | None = None
) -> FaultReport:
    rng = random.Random(seed)
    report = FaultReport()
    with chaos_landscape(state) as land:
        async with campaign_workers(land.temporal.address, land.env(), QUEUES, state) as (_, client, _):
            admin = KubeApiAdmin(land.garden.url)
            try:
                for i in range(runs):
                    quota = quota_plan[i] if quota_plan and i < len(quota_plan) else None
                    rec = await run_one(land, admin, client, rng, deadline, quota)
                    report.count(rec, len(rec.faults))
                    emit(rec, verbose)
            finally:
                admin.close()
    return report


REGISTRY_TRANSIENT = ("reg-503", "reg-429", "reg-cut")


async def run_one_ocm(
    land: OcmLandscape, client: Client, rng: random.Random, deadline: float, fatal: bool | None = None
) -> FaultRun:
    """One transport under registry faults; ``reg-401`` (the site registry refuses the credentials
    from then on) must fail the run non-retryably as BadCredentials, the others must not fail it."""
    prefix = f"f-{uuid.uuid4().hex[:8]}"
    faults = rng.sample(REGISTRY_TRANSIENT, rng.randint(1, 3))
    if (rng.random() < 0.25) if fatal is None else fatal:
        faults.append("reg-401")
    # The fatal fault is on from the start (the transport's first registry request comes after the
    # 1 s prepare step), so the expected outcome does not depend on timing.
    served_before = land.proxy.faults_served
    land.proxy.deny_all = "reg-401" in faults
    timed = [(f, rng.uniform(0.5, 6.0)) for f in faults if f != "reg-401"]
    t0 = time.monotonic()
    handle = await start_pipeline(
        client, transport_pipeline(land.keys), {"source": land.source_url, "target": f"{land.proxy.url}/{prefix}"}
    )

    async def one(fault: str) -> None:
        if fault == "reg-cut":
            land.proxy.cut_next(rng.randint(1, 3))
        else:
            land.proxy.fail_next(int(fault[4:]), rng.randint(1, 4))

    expected = "BadCredentials" if "reg-401" in faults else None
    unexpected = "succeeded although the registry refused the credentials"
    outcome, message = await judge(fire_at(timed, t0, one), handle, deadline, expected, unexpected)
    land.proxy.clear_faults()
    return FaultRun(
        prefix,
        faults,
        outcome,
        round(time.monotonic() - t0, 1),
        message[:300],
        land.proxy.faults_served - served_before,
    )


async def ocm_fault_campaign(
    runs: int, seed: int, state: Path, deadline: float = 180, verbose: bool = True, fatal_plan: list[bool] | None = None
) -> FaultReport:
    rng = random.Random(seed)
    report = FaultReport()
    with ocm_landscape(state) as land:
        await push_example(land.source_url, big_blob=20 << 20)
        async with campaign_workers(land.temporal.address, land.worker_env(), "pipeline,ocm", state) as (_, client, _):
            for i in range(runs):
                fatal = fatal_plan[i] if fatal_plan and i < len(fatal_plan) else None
                rec = await run_one_ocm(land, client, rng, deadline, fatal)
                report.count(rec, rec.served)
                emit(rec, verbose)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--lifecycle", choices=("cluster", "ocm", "all"), default="all")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--deadline", type=float, default=180, help="seconds before a run counts as hung")
    args = parser.parse_args()
    print(f"seed={args.seed}", flush=True)
    bad = 0
    if args.lifecycle in ("cluster", "all"):
        with tempfile.TemporaryDirectory(prefix="apeiro-faults-") as tmp:
            report = asyncio.run(fault_campaign(args.runs, args.seed, Path(tmp), args.deadline))
        print("cluster " + report.summary())
        bad += report.wrong + report.hung
    if args.lifecycle in ("ocm", "all"):
        with tempfile.TemporaryDirectory(prefix="apeiro-faults-ocm-") as tmp:
            report = asyncio.run(ocm_fault_campaign(args.runs, args.seed, Path(tmp), args.deadline))
        print("ocm " + report.summary())
        bad += report.wrong + report.hung
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
