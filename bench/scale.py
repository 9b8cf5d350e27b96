"""Scale-out figures: `python -m bench.scale [--pipelines 60] [--workers 1,2,4] [--repeat 2] [--no-layers]`.

1. The same batch of pipelines (each: 1 step, then 4 parallel steps, then 1 step; `core.echo`) on
   1, 2 and 4 `apeiro worker --queues pipeline` processes against a dev server on this machine.
   Printed per run: pipelines/s and steps/s, the ratio to the 1-process run measured in the same
   invocation (the baseline), and the CPU each side used (dev server vs. all workers, in CPU
   seconds per wall second; 2.0 = both cores of this machine) to show where it saturates.
2. Unless ``--no-layers``: pipelines whose steps run on the `gardener` queue (cluster.create against the
   landscape garden API, fast simulated clock), with the `pipeline` queue in one process and the
   `gardener` queue in 1 and then 2 other processes: the gardener layer scales without touching the
   pipeline workers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from temporalio.client import Client

from bench._common import exit_cleanly
from landscape.kubeapi.part import KubeApiServer
from landscape.temporal import TemporalDevServer
from tests.chaos.common import create_cluster_step, start_worker, stop_workers
from tests.support import pipeline
from workers.cli.pipeline import start_pipeline
from workers.config import data_converter

REPO = Path(__file__).resolve().parents[1]


def echo_pipeline() -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"name": "first", "uses": "core.echo", "with": {"values": {"i": 0}}}]
    steps += [
        {"name": f"p{i}", "uses": "core.echo", "needs": ["first"], "with": {"values": {"i": i}}} for i in range(4)
    ]
    steps.append({"name": "last", "uses": "core.echo", "needs": [f"p{i}" for i in range(4)]})
    return pipeline(steps, name="scale")


def cluster_pipeline() -> dict[str, Any]:
    return pipeline(
        name="scale-cluster",
        inputs={"site": {"type": "string"}},
        steps=[create_cluster_step("create")],
    )


@dataclass
class Figure:
    label: str
    processes: int
    pipelines: int
    steps: int
    seconds: float
    server_cpu: float
    worker_cpu: float
    client_cpu: float
    start_seconds: float

    @property
    def per_second(self) -> float:
        return self.pipelines / self.seconds


def start_workers(env: dict[str, str], queues: str, n: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    return [
        start_worker(env, queues, logs / f"{queues.replace(',', '+')}-{i}-{uuid.uuid4().hex[:4]}.log") for i in range(n)
    ]


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def batch(
    client: Client,
    label: str,
    definition: dict[str, Any],
    inputs: list[dict[str, Any]],
    steps_each: int,
    server_pids: Sequence[int],
    worker_procs: Sequence[subprocess.Popen[bytes]],
    processes: int,
) -> Figure:
    # Warm up: let every process import, connect and poll before the clock starts.
    await asyncio.sleep(3.0)
    worker_pids = [p.pid for p in worker_procs]
    me = [os.getpid()]
    s0, w0, c0, t0 = cpu_seconds(server_pids), cpu_seconds(worker_pids), cpu_seconds(me), time.monotonic()
    handles = await asyncio.gather(*(start_pipeline(client, definition, i) for i in inputs))
    started = time.monotonic() - t0
    results = asyncio.gather(*(h.result() for h in handles))
    while not results.done():
        await asyncio.wait([results], timeout=1.0)
        if not results.done() and all(p.poll() is not None for p in worker_procs):
            results.cancel()
            raise RuntimeError(f"every worker process exited; see their logs ({label})")
    await results
    seconds = time.monotonic() - t0
    wall = max(seconds, 1e-6)
    return Figure(
        label,
        processes,
        len(inputs),
        steps_each * len(inputs),
        seconds,
        (cpu_seconds(server_pids) - s0) / wall,
        (cpu_seconds(worker_pids) - w0) / wall,
        (cpu_seconds(me) - c0) / wall,
        started,
    )


def print_figures(title: str, figures: list[Figure]) -> None:
    base = figures[0]
    print(f"\n{title}")
    print(
        f"{'run':<34} {'procs':>5} {'pipelines/s':>12} {'steps/s':>9} {'ratio':>6} {'server cpu':>11} "
        f"{'worker cpu':>11} {'client cpu':>11} {'all started':>11}"
    )
    for f in figures:
        print(
            f"{f.label:<34} {f.processes:>5} {f.per_second:>12.2f} {f.steps / f.seconds:>9.1f} "
            f"{f.per_second / base.per_second:>6.2f} {f.server_cpu:>11.2f} {f.worker_cpu:>11.2f} "
            f"{f.client_cpu:>11.2f} {f.start_seconds:>10.1f}s"
        )
    print(
        f"baseline: {base.label} = {base.per_second:.2f} pipelines/s; ratios are against it "
        f"(machine: {psutil.cpu_count()} cores)"
    )


def print_medians(figures: list[Figure]) -> None:
    by_n: dict[int, list[float]] = {}
    for f in figures:
        by_n.setdefault(f.processes, []).append(f.per_second)
    base = statistics.median(by_n[min(by_n)])
    print(
        "median pipelines/s per process count (ratio to the 1-process median, the baseline): "
        + ", ".join(
            f"{n}: {statistics.median(v):.2f} ({statistics.median(v) / base:.2f}x)" for n, v in sorted(by_n.items())
        )
    )
    print(
        f"load average during the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
        "(other work on this machine skews every figure)"
    )


async def engine_scaling(state: Path, counts: list[int], pipelines: int, repeat: int = 1) -> list[Figure]:
    server = TemporalDevServer(headless=True, persistent=False)
    server.start(state / "temporal")
    logs = state / "logs"
    logs.mkdir(exist_ok=True)
    figures = []
    try:
        client = await Client.connect(server.address, data_converter=data_converter())
        env = {**os.environ, **server.env(), "PYTHONPATH": str(REPO)}
        server_pids = [p.pid for p in server.processes if p.pid is not None]
        # Interleaved repeats (1,2,4,1,2,4...): on a shared machine, load from other work drifts;
        # interleaving spreads it over every configuration instead of penalising the last one.
        for rep in range(repeat):
            for n in counts:
                procs = start_workers(env, "pipeline", n, logs)
                try:
                    figures.append(
                        await batch(
                            client,
                            f"{pipelines} pipelines, {n} proc(s), #{rep + 1}",
                            echo_pipeline(),
                            [{}] * pipelines,
                            6,
                            server_pids,
                            procs,
                            n,
                        )
                    )
                finally:
                    stop_workers(procs)
    finally:
        server.stop()
    return figures


async def layer_scaling(state: Path, pipelines: int) -> list[Figure]:
    server = TemporalDevServer(headless=True, persistent=False)
    server.start(state / "temporal-layers")
    garden = KubeApiServer(settings={"gardener.speed": "3000"}, bookmark_interval=0.5)
    logs = state / "logs-layers"
    logs.mkdir(exist_ok=True)
    figures = []
    try:
        garden.start(state / "garden")
        client = await Client.connect(server.address, data_converter=data_converter())
        env = {**os.environ, **server.env(), **garden.env(), "PYTHONPATH": str(REPO)}
        server_pids = [p.pid for p in server.processes if p.pid is not None]
        pipeline_procs = start_workers(env, "pipeline", 1, logs)
        try:
            for n in (1, 2):
                procs = start_workers(env, "gardener", n, logs)
                try:
                    sites = [{"site": f"s{uuid.uuid4().hex[:8]}"} for _ in range(pipelines)]
                    figures.append(
                        await batch(
                            client,
                            f"{pipelines} clusters, 1 pipeline + {n} gardener",
                            cluster_pipeline(),
                            sites,
                            1,
                            server_pids,
                            [*pipeline_procs, *procs],
                            n,
                        )
                    )
                finally:
                    stop_workers(procs)
        finally:
            stop_workers(pipeline_procs)
    finally:
        garden.stop()
        server.stop()
    return figures


async def main_async(args: argparse.Namespace) -> None:
    counts = [int(x) for x in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="apeiro-scale-") as tmp:
        figures = await engine_scaling(Path(tmp), counts, args.pipelines, args.repeat)
        print_figures("pipeline engine: same batch, more worker processes", figures)
        print_medians(figures)
        if args.layers:
            layered = await layer_scaling(Path(tmp), args.clusters)
            print_figures("layers: pipeline queue in one process, gardener queue in 1 vs 2 others", layered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipelines", type=int, default=60, help="pipelines per batch (6 steps each)")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to compare")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved repeats of each worker count")
    parser.add_argument(
        "--layers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the per-layer scaling run (default on)",
    )
    parser.add_argument("--clusters", type=int, default=12, help="cluster pipelines in the layer run")
    args = parser.parse_args()
    asyncio.run(main_async(args))
    exit_cleanly(0)  # sdk-python issue 300: no interpreter teardown with Temporal's threads alive


if __name__ == "__main__":
    main()
