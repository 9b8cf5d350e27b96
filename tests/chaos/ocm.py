"""Crash campaign for the OCM transport: `component.transport` (by value, signed at the target) on
two `apeiro worker --queues pipeline,ocm` processes, one killed with SIGKILL at a random point
(mid-upload often: the example carries a large blob), against two real registries (Debian
docker-registry). The site registry sits behind the counting proxy, so every committed blob upload
and manifest write is seen. A duplicate is the same blob committed twice into the same repository,
or more manifest writes than the clean baseline run makes.

    python -m tests.chaos.ocm --runs 6 [--seed 7] [--big-blob-mb 40]
"""

from __future__ import annotations

import argparse
import asyncio
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from temporalio.client import Client

from landscape.ocm_example import push_example
from landscape.registry import RegistryPart
from landscape.temporal import TemporalDevServer
from tests.chaos.common import REPO, CrashRun, CrashTally, disrupted_run, emit
from tests.chaos.harness import CountingProxy, WorkerPool, campaign_workers, counting_proxy, retried_activities
from tests.unit.ocm.helpers import key_pem, new_key, pub_pem
from workers.cli.pipeline import start_pipeline

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
class OcmRun(CrashRun):
    """A transport run: blob uploads and manifest writes the site registry saw."""

    repo: str = ""
    blob_commits: int = 0
    manifest_writes: int = 0


@dataclass
class OcmReport(CrashTally):
    baseline_blobs: int = 0
    baseline_manifests: int = 0

    def summary(self) -> str:
        return (
            self.tally_line("OCM crash campaign", f"kills={self.kills}", after="kill")
            + f" (clean run {self.baseline_seconds:.1f}s, {self.baseline_blobs} blob uploads, "
            f"{self.baseline_manifests} manifest writes)"
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
    kill: bool,
    window: float,
    report: OcmReport,
    timeout: float = 300,
) -> OcmRun:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    mark = len(land.proxy.writes)
    t0 = time.monotonic()
    handle = await start_pipeline(
        client, transport_pipeline(land.keys), {"source": land.source_url, "target": f"{land.proxy.url}/{prefix}"}
    )
    at = rng.uniform(0.5, max(1.0, window)) if kill else 0.0

    async def disrupt() -> None:
        pool.kill_one(rng)
        report.kills += 1

    end = await disrupted_run(
        lambda: asyncio.wait_for(handle.result(), timeout), disrupt if kill else None, at, 300, started=t0
    )
    completed, result, missed = end.completed, end.result, end.missed  # missed: the run ended before the kill
    blobs, manifests, dup = count(land.proxy, mark, prefix)
    duplicates = dup
    if report.baseline_manifests and completed:
        duplicates += max(0, blobs - report.baseline_blobs) + max(0, manifests - report.baseline_manifests)
    pool.top_up(2)
    retried = await retried_activities(client, handle.id, result) if completed else 0
    disruption = ("kill (after the end: not done)" if missed else "kill") if kill else "none"
    return OcmRun(
        disruption,
        round(at, 2),
        completed,
        round(end.seconds, 1),
        duplicates,
        end.error,
        retried,
        repo=prefix,
        blob_commits=blobs,
        manifest_writes=manifests,
    )


async def ocm_campaign(runs: int, seed: int, state: Path, big_blob: int = 40 << 20, verbose: bool = True) -> OcmReport:
    rng = random.Random(seed)
    report = OcmReport()
    with ocm_landscape(state) as land:
        await push_example(land.source_url, big_blob=big_blob)
        async with campaign_workers(land.temporal.address, land.worker_env(), "pipeline,ocm", state) as (
            pool,
            client,
            logs,
        ):
            base = await run_one(land, client, pool, rng, False, 0, report)
            if not base.completed:
                raise RuntimeError(f"the clean baseline transport failed: {base.error}; worker logs in {logs}")
            report.baseline_seconds, report.baseline_blobs = base.seconds, base.blob_commits
            report.baseline_manifests = base.manifest_writes
            emit(base, verbose, "baseline: ")
            attempts = 0
            while report.runs < runs and attempts < 3 * runs:
                attempts += 1
                rec = await run_one(land, client, pool, rng, True, 0.8 * base.seconds, report)
                emit(rec, verbose)
                if "not done" in rec.disruption:
                    report.missed += 1
                    continue
                report.count(rec)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--big-blob-mb", type=int, default=40)
    args = parser.parse_args()
    if not docker_registry_available():
        print("docker-registry is not installed (Debian package docker-registry)")
        return 2
    print(f"seed={args.seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="apeiro-chaos-ocm-") as tmp:
        report = asyncio.run(ocm_campaign(args.runs, args.seed, Path(tmp), args.big_blob_mb << 20))
    print(report.summary())
    return 0 if report.completed == report.runs and report.duplicates == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
