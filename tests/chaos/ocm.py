"""Crash campaign for the OCM transport: `component.transport` (by value, signed at the target) on
two `apeiro worker --queues pipeline,ocm` processes, one killed with SIGKILL at a random point
(mid-upload often: the example carries a large blob), against two real registries (Debian
docker-registry). The site registry sits behind the counting proxy, so every committed blob upload
and manifest write is seen. A duplicate is the same blob committed twice into the same repository,
or more manifest writes than the clean baseline run makes.

    python -m tests.chaos.ocm --runs 6 [--terms 6] [--seed 7] [--big-blob-mb 40]

``--terms`` adds runs where the worker is stopped with SIGTERM instead (a rolling restart). Each run
records its recovery time (tests/chaos/recovery.py); the summary prints median and max per kind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from temporalio.client import Client

from landscape.ocm_example import push_example
from landscape.registry import RegistryPart
from landscape.temporal import TemporalDevServer
from tests.chaos.harness import REPO, CountingProxy, WorkerPool, counting_proxy, retried_activities
from tests.chaos.recovery import RecoveryFigures, busy_worker_pids, recovery_after, run_workflow_ids
from tests.unit.ocm.helpers import key_pem, new_key, pub_pem
from workers.cli.pipeline import start_pipeline
from workers.config import data_converter

BLOB_COMMIT = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/[^/]+$")
MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")


def docker_registry_available() -> bool:
    return Path("/usr/bin/docker-registry").exists() or shutil.which("docker-registry") is not None


def transport_pipeline(keys: Path) -> dict[str, Any]:
    return {
        "apiVersion": "apeiro.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "ocm-crash"},
        "spec": {
            "inputs": {"source": {"type": "string"}, "target": {"type": "string"}},
            "steps": [
                {"name": "prepare", "uses": "core.echo", "with": {"values": {"ok": True}, "sleep": "1s"}},
                {
                    "name": "ship",
                    "uses": "component.transport",
                    "needs": ["prepare"],
                    "with": {
                        "source": {"url": "${{ inputs.source }}"},
                        "target": {
                            "url": "${{ inputs.target }}",
                            "username_ref": "apeiro",
                            "password_ref": "env:APEIRO_CHAOS_SITE_PASSWORD",
                        },
                        "components": [{"name": "example.apeiro.dev/edge-app", "version": "1.0.0"}],
                        "mode": "by-value",
                        "recursive": True,
                        "sign": {
                            "name": "site",
                            "private_key_ref": f"file:{keys / 'site.pem'}",
                            "public_key_ref": f"file:{keys / 'site.pub'}",
                        },
                    },
                },
            ],
            "outputs": {"verified": "steps.ship.outputs.verified"},
        },
    }


@dataclass
class OcmRun:
    repo: str
    disruption: str
    at_seconds: float
    completed: bool
    seconds: float
    blob_commits: int
    manifest_writes: int
    duplicates: int
    error: str = ""
    retried: int = 0
    recovery_s: float | None = None
    recovery: str = ""


@dataclass
class OcmReport:
    runs: int = 0
    kills: int = 0
    terms: int = 0
    completed: int = 0
    duplicates: int = 0
    interrupted: int = 0
    missed: int = 0
    baseline_seconds: float = 0.0
    baseline_blobs: int = 0
    baseline_manifests: int = 0
    records: list[OcmRun] = field(default_factory=list)
    recovery: RecoveryFigures = field(default_factory=RecoveryFigures)

    def summary(self) -> str:
        return (
            f"OCM crash campaign: runs={self.runs} kills={self.kills} terms={self.terms} completed={self.completed} "
            f"duplicates={self.duplicates} runs-with-retried-activities={self.interrupted} "
            f"(+{self.missed} runs that ended before their kill was due) (clean run {self.baseline_seconds:.1f}s, "
            f"{self.baseline_blobs} blob uploads, {self.baseline_manifests} manifest writes)\n"
            + self.recovery.summary(self.baseline_seconds)
        )


@dataclass
class OcmLandscape:
    temporal: TemporalDevServer
    source: RegistryPart
    site: RegistryPart
    proxy: CountingProxy
    keys: Path
    source_url: str

    def worker_env(self) -> dict[str, str]:
        """What `apeiro worker --queues pipeline,ocm` needs: Temporal and the site registry's password."""
        return {
            **os.environ,
            **self.temporal.env(),
            "APEIRO_CHAOS_SITE_PASSWORD": self.site.password or "",
            "PYTHONPATH": str(REPO),
        }


@contextmanager
def ocm_landscape(state: Path) -> Iterator[OcmLandscape]:
    temporal = TemporalDevServer(headless=True, persistent=True)
    temporal.start(state / "temporal")
    source = RegistryPart("source")
    site = RegistryPart("site", username="apeiro")
    try:
        source.start(state / "source")
        site.start(state / "site")
        keys = state / "keys"
        keys.mkdir(exist_ok=True)
        signer = new_key()
        (keys / "site.pem").write_bytes(key_pem(signer))
        (keys / "site.pub").write_bytes(pub_pem(signer))
        with counting_proxy(site.url) as proxy:
            yield OcmLandscape(temporal, source, site, proxy, keys, f"{source.url}/ocm")
    finally:
        site.stop()
        source.stop()
        temporal.stop()


def count(proxy: CountingProxy, mark: int, repo_prefix: str) -> tuple[int, int, int]:
    """(blob commits, manifest writes, duplicate blob commits) under ``/v2/<repo_prefix>``."""
    commits: Counter[tuple[str, str]] = Counter()
    manifests = 0
    for w in proxy.writes[mark:]:
        if w.status >= 300 or not w.path.startswith(f"/v2/{repo_prefix}"):
            continue
        if w.method == "PUT" and (m := BLOB_COMMIT.match(w.path)):
            digest = parse_qs(w.query).get("digest", [w.path])[0]
            commits[(m["repo"], digest)] += 1
        elif w.method == "PUT" and MANIFEST.match(w.path):
            manifests += 1
    # A blob committed twice into one repository is an upload the transport should have skipped
    # (it checks with HEAD first, and resumes an interrupted upload instead of starting over).
    dup = sum(n - 1 for n in commits.values() if n > 1)
    return sum(commits.values()), manifests, dup


async def run_one(
    land: OcmLandscape,
    client: Client,
    pool: WorkerPool,
    rng: random.Random,
    disruption: str,  # "none", "kill" (SIGKILL) or "term" (SIGTERM)
    window: float,
    report: OcmReport,
    timeout: float = 300,
) -> OcmRun:
    kill = disruption != "none"
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    mark = len(land.proxy.writes)
    t0 = time.monotonic()
    handle = await start_pipeline(
        client, transport_pipeline(land.keys), {"source": land.source_url, "target": f"{land.proxy.url}/{prefix}"}
    )
    at = rng.uniform(0.5, max(1.0, window)) if kill else 0.0

    fired = asyncio.Event()
    fired_at = datetime.now(UTC)

    async def disrupt() -> None:
        nonlocal fired_at
        if kill:
            await asyncio.sleep(at)
            busy = await busy_worker_pids(client, handle.id)
            fired_at = datetime.now(UTC)
            fired.set()
            if disruption == "term":
                pool.term_one(rng, busy)
                report.terms += 1
            else:
                pool.kill_one(rng, busy)
                report.kills += 1

    task = asyncio.create_task(disrupt())
    completed, error = False, ""
    result: Any = None
    try:
        result = await asyncio.wait_for(handle.result(), timeout)
        completed = isinstance(result, dict) and result.get("state") == "succeeded"
        if not completed:
            error = f"pipeline ended {result!r}"[:300]
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    seconds = time.monotonic() - t0
    missed = kill and not fired.is_set()
    if missed:  # the run ended before the kill was due: nothing was disrupted
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    blobs, manifests, dup = count(land.proxy, mark, prefix)
    duplicates = dup
    if report.baseline_manifests and completed:
        duplicates += max(0, blobs - report.baseline_blobs) + max(0, manifests - report.baseline_manifests)
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
    return OcmRun(
        prefix,
        f"{disruption} (after the end: not done)" if missed else disruption,
        round(at, 2),
        completed,
        round(seconds, 1),
        blobs,
        manifests,
        duplicates,
        error,
        retried,
        None if recovery is None or recovery.seconds is None else round(recovery.seconds, 2),
        recovery.describe() if recovery else "",
    )


async def ocm_campaign(
    runs: int, seed: int, state: Path, big_blob: int = 40 << 20, verbose: bool = True, terms: int = 0
) -> OcmReport:
    rng = random.Random(seed)
    report = OcmReport()
    with ocm_landscape(state) as land:
        await push_example(land.source_url, big_blob=big_blob)
        logs = state / "workers"
        logs.mkdir(exist_ok=True)
        env = {**land.temporal.env(), "APEIRO_CHAOS_SITE_PASSWORD": land.site.password or ""}
        pool = WorkerPool({**os.environ, **env, "PYTHONPATH": str(REPO)}, "pipeline,ocm", logs)
        pool.start(2)
        try:
            client = await Client.connect(land.temporal.address, data_converter=data_converter())
            base = await run_one(land, client, pool, rng, "none", 0, report)
            if not base.completed:
                raise RuntimeError(f"the clean baseline transport failed: {base.error}; worker logs in {logs}")
            report.baseline_seconds, report.baseline_blobs = base.seconds, base.blob_commits
            report.baseline_manifests = base.manifest_writes
            if verbose:
                print(f"baseline: {json.dumps(asdict(base))}", flush=True)
            # The first run pays for imports and connections; disruptions are timed against the fastest
            # clean run seen (a warm second one, then any run that ended before its disruption was due).
            warm = await run_one(land, client, pool, rng, "none", 0, report)
            fastest = min(base.seconds, warm.seconds) if warm.completed else base.seconds
            plan = ["kill"] * runs + ["term"] * terms
            rng.shuffle(plan)
            attempts, limit = 0, 3 * len(plan)
            while plan and attempts < limit:
                attempts += 1
                rec = await run_one(land, client, pool, rng, plan[0], 0.8 * fastest, report)
                if "not done" in rec.disruption:
                    report.missed += 1
                    if rec.completed:
                        fastest = min(fastest, rec.seconds)
                    if verbose:
                        print(json.dumps(asdict(rec)), flush=True)
                    continue
                kind = plan.pop(0)
                report.runs += 1
                report.completed += int(rec.completed)
                if rec.completed:
                    report.recovery.add("kill -9" if kind == "kill" else "SIGTERM", rec.recovery_s)
                report.duplicates += rec.duplicates
                report.interrupted += int(rec.retried > 0)
                report.records.append(rec)
                if verbose:
                    print(json.dumps(asdict(rec)), flush=True)
        finally:
            pool.stop()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=6, help="transports with one worker killed (kill -9)")
    parser.add_argument("--terms", type=int, default=0, help="transports with one worker stopped by SIGTERM")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--big-blob-mb", type=int, default=40)
    args = parser.parse_args()
    if not docker_registry_available():
        print("docker-registry is not installed (Debian package docker-registry)")
        return 2
    print(f"seed={args.seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="apeiro-chaos-ocm-") as tmp:
        report = asyncio.run(ocm_campaign(args.runs, args.seed, Path(tmp), args.big_blob_mb << 20, terms=args.terms))
    print(report.summary())
    return 0 if report.completed == report.runs and report.duplicates == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
