"""Benchmark: by-value transport of a component with a 1 GiB blob vs a raw streaming copy.

Run: ``python -m bench.transport [--size-mib 1024]``. In one run it starts two Debian
``docker-registry`` instances (source: plain HTTP; site: TLS + htpasswd, as in the landscape), a
Temporal dev server and an ``ocm`` worker in its own process, pushes the example component with a
payload of ``--size-mib`` to the source, then measures:

1. the baseline: the same blob copied source -> site with plain httpx, GET stream -> one streaming
   PUT, SHA-256 computed on the fly, no Temporal;
2. ``ComponentTransportWorkflow`` by value to a fresh target on the site registry (sign included);
3. the same transport again (must send 0 blob bytes).

It prints both throughputs, their ratio, the worker's peak RSS (VmHWM) and the re-run figures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from activities.ocm.layout import RepoBase, read_version
from activities.ocm.oci import RegistryClient
from definitions.ocm import ComponentVersionRef, RepositorySpec, SigningSpec, TransportInput, TransportResult
from landscape import ocm_example as ex
from landscape.registry import RegistryPart
from landscape.temporal import TemporalDevServer
from workers.config import data_converter

MiB = 1024 * 1024


async def raw_copy(source: RegistryPart, src_repo: str, site: RegistryPart, dst_repo: str, digest: str) -> int:
    """GET -> streaming PUT with hashing: the simplest correct streaming copy (no resume, no Temporal)."""
    ctx = ssl.create_default_context(cafile=site.endpoints["ca_bundle"])
    auth = httpx.BasicAuth(site.username or "", site.password or "")
    async with (
        httpx.AsyncClient(timeout=300) as src,
        httpx.AsyncClient(verify=ctx, auth=auth, timeout=300) as dst,
    ):
        r = await dst.post(f"{site.url}/v2/{dst_repo}/blobs/uploads/")
        r.raise_for_status()
        location = httpx.URL(site.url).join(r.headers["location"])
        hasher = hashlib.sha256()
        size = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal size
            async with src.stream("GET", f"{source.url}/v2/{src_repo}/blobs/{digest}") as resp:
                resp.raise_for_status()
                async for chunk in resp.aiter_bytes(MiB):
                    hasher.update(chunk)
                    size += len(chunk)
                    yield chunk

        put = await dst.put(
            location.copy_merge_params({"digest": digest}),
            content=body(),
            headers={"Content-Type": "application/octet-stream"},
        )
        put.raise_for_status()
        if "sha256:" + hasher.hexdigest() != digest:
            raise RuntimeError("raw copy: digest mismatch")
        return size


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def worker_main(address: str) -> None:
    from temporalio.client import Client

    from workers.worker import run_workers

    client = await Client.connect(address, data_converter=data_converter())
    print("ready", flush=True)
    await run_workers(client, ["ocm"])


async def bench(size_mib: int, state: Path) -> None:
    source, site = RegistryPart("source"), RegistryPart("site", tls=True, username="apeiro")
    temporal = TemporalDevServer(headless=True, persistent=False)
    parts = [source, site, temporal]
    worker: subprocess.Popen[bytes] | None = None
    try:
        for p in parts:
            p.start(state / p.name)
        keys = state / "keys"
        keys.mkdir()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (keys / "site.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        os.environ["APEIRO_BENCH_SITE_PASSWORD"] = site.password or ""
        src_url = f"{source.url}/bench"
        print(f"pushing the example component with a {size_mib} MiB payload ...", flush=True)
        t0 = time.monotonic()
        await ex.push_example(src_url, big_blob=size_mib * MiB)
        async with RegistryClient(source.url) as c:
            sv = await read_version(c, RepoBase.parse(src_url), ex.MAIN, ex.VERSION)
        payload = next(lay for lay in sv.blob_layers if lay["size"] == size_mib * MiB)
        print(f"  pushed in {time.monotonic() - t0:.1f}s")

        # 1. baseline
        t0 = time.monotonic()
        n = await raw_copy(source, sv.repo, site, "raw/copy", payload["digest"])
        raw_s = time.monotonic() - t0
        raw_tp = n / MiB / raw_s

        # 2. transport through Temporal, worker in its own process
        address = temporal.endpoints["address"]
        worker = subprocess.Popen(  # noqa: ASYNC220 - the worker under test, in its own process
            [sys.executable, "-m", "bench.transport", "--worker", address],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert worker.stdout is not None
        worker.stdout.readline()
        from temporalio.client import Client

        client = await Client.connect(address, data_converter=data_converter())
        inp = TransportInput(
            source=RepositorySpec(url=src_url),
            target=RepositorySpec(
                url=f"{site.url}/site-{uuid.uuid4().hex[:6]}",
                username_ref="apeiro",
                password_ref="env:APEIRO_BENCH_SITE_PASSWORD",
                ca_bundle=site.endpoints["ca_bundle"],
            ),
            components=[ComponentVersionRef(name=ex.MAIN, version=ex.VERSION)],
            sign=SigningSpec(name="site", private_key_ref=f"file:{keys / 'site.pem'}"),
        )
        rss_before = peak_rss_mib(worker.pid)
        t0 = time.monotonic()
        result = await client.execute_workflow(
            "ComponentTransportWorkflow",
            inp,
            id=f"bench-{uuid.uuid4().hex}",
            task_queue="ocm",
            result_type=TransportResult,
        )
        tr_s = time.monotonic() - t0
        tr_tp = result.bytes_sent / MiB / tr_s
        rss = peak_rss_mib(worker.pid)

        # 3. re-transfer
        t0 = time.monotonic()
        again = await client.execute_workflow(
            "ComponentTransportWorkflow",
            inp,
            id=f"bench-{uuid.uuid4().hex}",
            task_queue="ocm",
            result_type=TransportResult,
        )
        re_s = time.monotonic() - t0

        print()
        print(f"payload                          : {size_mib} MiB (+ small blobs, an OCI image, a reference)")
        print(f"baseline raw streaming copy       : {raw_tp:8.1f} MiB/s ({raw_s:.1f}s, httpx GET -> PUT + sha256)")
        print(
            f"by-value transport (Temporal)     : {tr_tp:8.1f} MiB/s ({tr_s:.1f}s for {result.bytes_sent / MiB:.1f} "
            f"MiB, {result.blobs_copied} blobs, signed + verified: {result.verified})"
        )
        print(f"ratio transport / raw             : {tr_tp / raw_tp:8.2f}   (target >= 0.80)")
        print(f"worker peak RSS (VmHWM)           : {rss:8.1f} MiB (at start {rss_before:.1f} MiB; target < 150)")
        print(
            f"re-transfer                       : {again.bytes_sent} blob bytes sent, {re_s:.2f}s "
            f"(outcomes {[v.outcome for v in again.versions]}; target 0 bytes, < 2 s)"
        )
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=20)
        for p in reversed(parts):
            p.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.transport", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--worker", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker_main(args.worker))
        return
    with tempfile.TemporaryDirectory(prefix="apeiro-bench-") as d:
        asyncio.run(bench(args.size_mib, Path(d)))


if __name__ == "__main__":
    main()
