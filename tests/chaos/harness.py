"""Crash-campaign harness: a persistent Temporal dev server, the garden API behind a counting proxy,
and `apeiro worker` processes we can kill -9.

The proxy sits between the workers and the landscape API server and records every write request
(method, path, status), so a campaign can count side effects exactly: a Shoot created twice, or
patched more often than a clean run patches it, is a duplicate. The simulated gardenlet runs inside
the API server, so its own status writes never pass the proxy.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from temporalio.client import Client

from landscape.kubeapi.part import KubeApiServer
from landscape.process import free_port
from landscape.temporal import TemporalDevServer
from tests.chaos.recovery import retried_in, run_workflow_ids
from tests.proxy_support import HOP, catch_all, serving
from workers.config import data_converter

REPO = Path(__file__).resolve().parents[2]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Write:
    method: str
    path: str
    status: int
    query: str = ""


class CountingProxy:
    """Forward everything to ``upstream``; remember each write and its answer."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.writes: list[Write] = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client: httpx.AsyncClient | None = None
        #: Fault injection (registry campaigns): answer the next N requests with a status, cut the
        #: next N response bodies midway, or refuse every request with 401 until cleared.
        self.fail_status = 0
        self.fail_count = 0
        self.cut_count = 0
        self.deny_all = False
        self.faults_served = 0

    def fail_next(self, status: int, count: int) -> None:
        with self.lock:
            self.fail_status, self.fail_count = status, count

    def cut_next(self, count: int) -> None:
        with self.lock:
            self.cut_count = count

    def clear_faults(self) -> None:
        with self.lock:
            self.fail_count = self.cut_count = 0
            self.deny_all = False

    async def handle(self, request: Request) -> Response:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=None)
        with self.lock:
            if self.deny_all:
                self.faults_served += 1
                return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
            if self.fail_count > 0:
                self.fail_count -= 1
                self.faults_served += 1
                return Response(status_code=self.fail_status, headers={"Retry-After": "0"})
            cut = False
            if self.cut_count > 0 and request.method == "GET" and "/blobs/" in request.url.path:
                self.cut_count -= 1
                self.faults_served += 1
                cut = True
        url = self.upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        body = await request.body()
        upstream = await self.client.send(
            self.client.build_request(request.method, url, headers=headers, content=body), stream=True
        )
        if request.method in WRITES:
            with self.lock:
                self.writes.append(Write(request.method, request.url.path, upstream.status_code, request.url.query))
        out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP}
        if "location" in out:  # registries answer with absolute upload URLs: keep clients on the proxy
            out["location"] = out["location"].replace(self.upstream, self.url)
        if request.method == "HEAD":
            if "content-length" in upstream.headers:
                out["content-length"] = upstream.headers["content-length"]
            await upstream.aclose()
            return Response(status_code=upstream.status_code, headers=out)

        async def stream() -> AsyncIterator[bytes]:
            try:
                sent = 0
                async for chunk in upstream.aiter_raw():
                    yield chunk
                    sent += len(chunk)
                    if cut and sent > 0:
                        raise ConnectionAbortedError("fault injection: connection cut mid-body")
            finally:
                await upstream.aclose()

        return StreamingResponse(stream(), status_code=upstream.status_code, headers=out)

    def writes_to(self, fragment: str) -> list[Write]:
        with self.lock:
            return [w for w in self.writes if fragment in w.path]


@contextmanager
def counting_proxy(upstream: str) -> Iterator[CountingProxy]:
    proxy = CountingProxy(upstream)
    # log_level critical: a cut watch aborts the proxied stream on purpose; uvicorn would log each one.
    with serving(catch_all(proxy.handle), proxy.port, log_level="critical"):
        yield proxy


@dataclass
class WorkerPool:
    """`apeiro worker` processes, the way operators run them."""

    env: dict[str, str]
    queues: str
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: int = 0
    started: int = 0
    #: Workers sent SIGTERM that may still be finishing (a rolling restart's old generation).
    stopping: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, n: int = 1, ready_timeout: float = 90) -> None:
        """Start ``n`` workers and wait until they poll (as a rolling deploy waits for readiness
        before stopping the old generation; otherwise a campaign would time Python's start-up)."""
        logs = []
        for _ in range(n):
            self.started += 1
            path = self.log_dir / f"worker-{self.started}.log"
            log = open(path, "wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "worker", "--queues", self.queues],
                env={**self.env, "PYTHONUNBUFFERED": "1"},
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            self.procs.append(proc)
            logs.append((proc, path))
        deadline = time.monotonic() + ready_timeout
        for proc, path in logs:
            while b"workers running" not in path.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {proc.pid} did not start polling; see {path}")
                time.sleep(0.1)

    def top_up(self, n: int) -> None:
        """Start workers until ``n`` are alive (after a kill, for the next run)."""
        missing = n - len(self.alive())
        if missing > 0:
            self.start(missing)

    def alive(self) -> list[subprocess.Popen[bytes]]:
        """Live workers that still poll (not those stopping after SIGTERM)."""
        return [p for p in self.procs if p.poll() is None and p not in self.stopping]

    def term_one(self, rng: random.Random, prefer: set[int] | None = None) -> int:
        """SIGTERM one live worker (what compose/Kubernetes do on a rolling restart); return its pid.
        It stops polling at once and exits when its activities are finished or handed off."""
        victim = self.pick(rng, prefer)
        victim.send_signal(signal.SIGTERM)
        self.stopping.append(victim)
        return victim.pid

    def reap(self, timeout: float = 30) -> list[int]:
        """Wait for the workers stopping after SIGTERM; return their exit codes (kill -9 the late)."""
        codes = []
        for p in self.stopping:
            try:
                codes.append(p.wait(timeout=timeout))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait(timeout=5))
        self.stopping.clear()
        return codes

    def pick(self, rng: random.Random, prefer: set[int] | None = None) -> subprocess.Popen[bytes]:
        """A live worker, one of the ``prefer`` pids (busy with the run's work) when possible."""
        busy = [p for p in self.alive() if prefer and p.pid in prefer]
        return rng.choice(busy or self.alive())

    def kill_one(self, rng: random.Random, prefer: set[int] | None = None) -> int:
        """kill -9 one live worker; return its pid."""
        victim = self.pick(rng, prefer)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        self.kills += 1
        return victim.pid

    def stop(self) -> None:
        self.stopping.clear()
        for p in self.alive():
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.procs.clear()


@dataclass
class ChaosLandscape:
    """Temporal (persistent db, restartable on the same port) and the garden API behind a proxy."""

    state: Path
    temporal: TemporalDevServer
    garden: KubeApiServer
    proxy: CountingProxy
    kubeconfig: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            **self.temporal.env(),
            "APEIRO_GARDEN_KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": str(REPO),
            **extra,
        }

    def restart_temporal(self, down_seconds: float = 1.0) -> None:
        """Stop the dev server (SIGTERM) and start it again on the same port with the same database."""
        self.temporal.stop()
        time.sleep(down_seconds)
        self.temporal.start(self.state / "temporal")


@contextmanager
def chaos_landscape(state: Path, gardener_speed: str = "300") -> Iterator[ChaosLandscape]:
    temporal = TemporalDevServer(headless=True, persistent=True)
    temporal.start(state / "temporal")
    garden = KubeApiServer(settings={"gardener.speed": gardener_speed}, bookmark_interval=0.5)
    try:
        garden.start(state / "garden")
        with counting_proxy(garden.url) as proxy:
            kubeconfig = state / "kubeconfig-proxy"
            config: dict[str, Any] = yaml.safe_load(Path(garden.endpoints["kubeconfig"]).read_text())
            config["clusters"][0]["cluster"]["server"] = proxy.url
            kubeconfig.write_text(yaml.safe_dump(config))
            yield ChaosLandscape(state, temporal, garden, proxy, kubeconfig)
    finally:
        garden.stop()
        temporal.stop()


@asynccontextmanager
async def campaign_workers(
    address: str, env: dict[str, str], queues: str, state: Path, n: int = 2
) -> AsyncIterator[tuple[WorkerPool, Client, Path]]:
    """``n`` worker processes for ``queues`` (logs under ``state/workers``) and a client, for one
    campaign; the workers stop when it ends."""
    logs = state / "workers"
    logs.mkdir(exist_ok=True)
    pool = WorkerPool(env, queues, logs)
    pool.start(n)
    try:
        client = await Client.connect(address, data_converter=data_converter())
        yield pool, client, logs
    finally:
        pool.stop()


async def retried_activities(client: Any, workflow_id: str, result: Any) -> int:
    """Activities of a finished pipeline (its own and its child workflows') that needed more than one
    attempt: evidence that a kill or restart really interrupted work in flight, not an idle worker."""
    return await retried_in(client, run_workflow_ids(workflow_id, result))
