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
import json
import os
import random
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from landscape.kubeapi.admin import KubeApiAdmin
from landscape.ocm_example import push_example
from tests.chaos.campaign import QUEUES, crash_pipeline
from tests.chaos.harness import REPO, ChaosLandscape, WorkerPool, chaos_landscape
from tests.chaos.ocm import OcmLandscape, ocm_landscape, transport_pipeline
from workers.cli.pipeline import start_pipeline
from workers.config import data_converter

NS = "garden-edge"
TRANSIENT = ("api-409", "api-429", "api-503", "cut-watches", "shoot-error")


@dataclass
class FaultRun:
    site: str
    faults: list[str]
    outcome: str  # succeeded | failed-as-expected | wrong-outcome | hung
    seconds: float
    message: str = ""
    #: Faulty answers the proxy actually gave (registry runs; a fault timed after the end never fires).
    served: int = -1


@dataclass
class FaultReport:
    runs: int = 0
    faults_injected: int = 0
    succeeded: int = 0
    failed_as_expected: int = 0
    wrong: int = 0
    hung: int = 0
    records: list[FaultRun] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"fault campaign: runs={self.runs} faults={self.faults_injected} succeeded={self.succeeded} "
            f"failed-as-expected={self.failed_as_expected} wrong-outcome={self.wrong} hung={self.hung}"
        )


def inject(admin: KubeApiAdmin, fault: str, site: str, rng: random.Random) -> None:
    if fault.startswith("api-"):
        admin.inject(int(fault[4:]), count=rng.randint(1, 3), resource="shoots", namespace=NS, retry_after=1)
    elif fault == "cut-watches":
        admin.cut_watches("reset")
    elif fault == "shoot-error":
        admin.post("/admin/gardener/faults", {"fault": "error", "shoot": f"{NS}/{site}", "simSeconds": 900})
    elif fault == "quota-exceeded":
        admin.post("/admin/gardener/faults", {"fault": "quota-exceeded", "shoot": f"{NS}/{site}"})


def failure_text(exc: BaseException) -> tuple[str, bool]:
    """The whole cause chain's messages, and whether the failure was non-retryable."""
    parts: list[str] = []
    non_retryable = False
    cur: BaseException | None = exc
    while cur is not None:
        parts.append(str(cur))
        if isinstance(cur, ApplicationError) and cur.non_retryable:
            non_retryable = True
        cur = cur.__cause__
    return " | ".join(parts), non_retryable


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

    async def fire() -> None:
        for fault, at in sorted(timed, key=lambda x: x[1]):
            await asyncio.sleep(max(0.0, at - (time.monotonic() - t0)))
            await asyncio.to_thread(inject, admin, fault, site, rng)

    injector = asyncio.create_task(fire())
    expect_failure = "quota-exceeded" in faults
    try:
        await asyncio.wait_for(handle.result(), deadline)
        outcome = "wrong-outcome" if expect_failure else "succeeded"
        message = "succeeded despite quota-exceeded" if expect_failure else ""
    except TimeoutError:
        outcome, message = "hung", f"no result after {deadline:.0f}s"
        await handle.terminate("fault campaign: hung")
    except WorkflowFailureError as exc:
        message, non_retryable = failure_text(exc)
        ok = expect_failure and non_retryable and "ERR_INFRA_QUOTA_EXCEEDED" in message
        outcome = "failed-as-expected" if ok else "wrong-outcome"
    injector.cancel()
    admin.clear_faults()
    admin.client.delete("/admin/gardener/faults")
    return FaultRun(site, faults, outcome, round(time.monotonic() - t0, 1), message[:300])


async def fault_campaign(
    runs: int, seed: int, state: Path, deadline: float = 180, verbose: bool = True, quota_plan: list[bool] | None = None
) -> FaultReport:
    rng = random.Random(seed)
    report = FaultReport()
    with chaos_landscape(state) as land:
        logs = state / "workers"
        logs.mkdir(exist_ok=True)
        pool = WorkerPool(land.env(), QUEUES, logs)
        pool.start(2)
        admin = KubeApiAdmin(land.garden.url)
        try:
            client = await Client.connect(land.temporal.address, data_converter=data_converter())
            for i in range(runs):
                quota = quota_plan[i] if quota_plan and i < len(quota_plan) else None
                rec = await run_one(land, admin, client, rng, deadline, quota)
                report.runs += 1
                report.faults_injected += len(rec.faults)
                report.succeeded += rec.outcome == "succeeded"
                report.failed_as_expected += rec.outcome == "failed-as-expected"
                report.wrong += rec.outcome == "wrong-outcome"
                report.hung += rec.outcome == "hung"
                report.records.append(rec)
                if verbose:
                    print(json.dumps(asdict(rec)), flush=True)
        finally:
            admin.close()
            pool.stop()
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

    async def fire() -> None:
        for fault, at in sorted(timed, key=lambda x: x[1]):
            await asyncio.sleep(max(0.0, at - (time.monotonic() - t0)))
            if fault == "reg-cut":
                land.proxy.cut_next(rng.randint(1, 3))
            else:
                land.proxy.fail_next(int(fault[4:]), rng.randint(1, 4))

    injector = asyncio.create_task(fire())
    expect_failure = "reg-401" in faults
    try:
        await asyncio.wait_for(handle.result(), deadline)
        outcome = "wrong-outcome" if expect_failure else "succeeded"
        message = "succeeded although the registry refused the credentials" if expect_failure else ""
    except TimeoutError:
        outcome, message = "hung", f"no result after {deadline:.0f}s"
        await handle.terminate("fault campaign: hung")
    except WorkflowFailureError as exc:
        message, non_retryable = failure_text(exc)
        ok = expect_failure and non_retryable and "BadCredentials" in message
        outcome = "failed-as-expected" if ok else "wrong-outcome"
    injector.cancel()
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
        logs = state / "workers"
        logs.mkdir(exist_ok=True)
        env = {
            **os.environ,
            **land.temporal.env(),
            "APEIRO_CHAOS_SITE_PASSWORD": land.site.password or "",
            "PYTHONPATH": str(REPO),
        }
        pool = WorkerPool(env, "pipeline,ocm", logs)
        pool.start(2)
        try:
            client = await Client.connect(land.temporal.address, data_converter=data_converter())
            for i in range(runs):
                fatal = fatal_plan[i] if fatal_plan and i < len(fatal_plan) else None
                rec = await run_one_ocm(land, client, rng, deadline, fatal)
                report.runs += 1
                report.faults_injected += rec.served
                report.succeeded += rec.outcome == "succeeded"
                report.failed_as_expected += rec.outcome == "failed-as-expected"
                report.wrong += rec.outcome == "wrong-outcome"
                report.hung += rec.outcome == "hung"
                report.records.append(rec)
                if verbose:
                    print(json.dumps(asdict(rec)), flush=True)
        finally:
            pool.stop()
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
