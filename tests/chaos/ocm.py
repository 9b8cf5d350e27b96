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

import asyncio
import json
import os
import random
import re
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from temporalio.client import Client

from landscape.ocm_example import push_example
from landscape.registry import RegistryPart
from landscape.temporal import TemporalDevServer
from tests.chaos.common import CrashCommand, CrashRun, CrashTally, disrupted_run, run_fields, run_plan, stop_a_worker
from tests.chaos.harness import REPO, CountingProxy, WorkerPool, campaign_workers, counting_proxy
from tests.chaos.recovery import run_workflow_ids
from tests.support import pipeline
from tests.unit.ocm.helpers import key_pem, new_key, pub_pem
from workers.cli.pipeline import start_pipeline

BLOB_COMMIT = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/[^/]+$")
MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")


def docker_registry_available() -> bool:
    return Path("/usr/bin/docker-registry").exists() or shutil.which("docker-registry") is not None


def transport_pipeline(keys: Path) -> dict[str, Any]:
    return pipeline(
        name="ocm-crash",
        inputs={"source": {"type": "string"}, "target": {"type": "string"}},
        steps=[
            {"name": "prepare", "uses": "core.echo", "with": {"values": {"ok": True}, "sleep": "1s"}},
            {
                "name": "ship",
                "uses": "component.transport",
                "needs": ["prepare"],
                "with": {
                    "source": {"url": "${{ inputs.source }}"},
                    "target": {
                        "url": "${{ inputs.target }}",
                        "username": "apeiro",
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
        outputs={"verified": "steps.ship.outputs.verified"},
    )


@dataclass(kw_only=True)
class OcmRun(CrashRun):
    repo: str
    blob_commits: int
    manifest_writes: int


@dataclass
class OcmReport(CrashTally):
    baseline_blobs: int = 0
    baseline_manifests: int = 0

    def summary(self) -> str:
        line = self.tally_line("OCM crash campaign", f"kills={self.kills} terms={self.terms}", after="kill")
        return (
            f"{line} (clean run {self.baseline_seconds:.1f}s, "
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

    fired_at = datetime.now(UTC)

    async def disrupt() -> None:
        nonlocal fired_at
        fired_at = await stop_a_worker(client, pool, rng, handle.id, disruption, report)

    end = await disrupted_run(
        lambda: asyncio.wait_for(handle.result(), timeout), disrupt if kill else None, at, error_chars=300, started=t0
    )
    blobs, manifests, dup = count(land.proxy, mark, prefix)
    duplicates = dup
    if report.baseline_manifests and end.completed:
        duplicates += max(0, blobs - report.baseline_blobs) + max(0, manifests - report.baseline_manifests)
    fields = await run_fields(client, pool, run_workflow_ids(handle.id, end.result), disruption, at, end, fired_at)
    return OcmRun(repo=prefix, blob_commits=blobs, manifest_writes=manifests, duplicates=duplicates, **fields)


async def ocm_campaign(
    runs: int, seed: int, state: Path, big_blob: int = 40 << 20, verbose: bool = True, terms: int = 0
) -> OcmReport:
    rng = random.Random(seed)
    report = OcmReport()
    with ocm_landscape(state) as land:
        await push_example(land.source_url, big_blob=big_blob)
        workers = campaign_workers(land.temporal.address, land.worker_env(), "pipeline,ocm", state)
        async with workers as (pool, client, logs):
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

            def missed(rec: OcmRun) -> None:
                nonlocal fastest
                if rec.completed:
                    fastest = min(fastest, rec.seconds)

            await run_plan(
                plan,
                lambda kind: run_one(land, client, pool, rng, kind, 0.8 * fastest, report),
                report,
                verbose,
                missed,
            )
    return report


def main() -> int:
    parser = CrashCommand(__doc__, runs=6, what="transports")
    parser.add_argument("--big-blob-mb", type=int, default=40)
    args = parser.parse_args()
    if not docker_registry_available():
        print("docker-registry is not installed (Debian package docker-registry)")
        return 2
    return parser.run_campaign(
        args.seed,
        "apeiro-chaos-ocm-",
        lambda tmp: ocm_campaign(args.runs, args.seed, tmp, args.big_blob_mb << 20, terms=args.terms),
    )


if __name__ == "__main__":
    raise SystemExit(main())
