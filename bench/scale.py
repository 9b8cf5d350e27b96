"""Scale-out curve: throughput against the number of worker processes serving one queue.

Run: ``python -m bench.scale [--quick] [--levels 1 2 4] [--pipelines 120] [--repeat 3] [--no-layers]``
(``--workers 1,2,4`` still works as ``--levels``).

1. The pipeline queue: the same batch of pipelines (each: 1 step, then 4 parallel steps, then 1 step;
   `core.echo`) on 1, 2 and 4 `apeiro worker --queues pipeline` processes against a dev server on this
   machine, repeated interleaved (1,2,4,1,2,4: load drift from other work spreads over every count).
2. Unless ``--no-layers``: the gardener layer: pipelines whose step runs on the `gardener` queue
   (cluster.create against the landscape garden API, fast simulated clock), the `pipeline` queue in one
   process and the `gardener` queue in 1 and then 2 other processes.

Each batch starts after an untimed warm-up (4 echo or 2 cluster pipelines per process: a fresh
process's first workflow tasks load its sandbox). Baseline (same run): the 1-process figure of the same
queue (the median of its repeats). Figures per worker count: pipelines/s and steps/s (median of the
repeats), their ratio to the baseline, and the CPU (cores: CPU seconds per wall second) of the dev
server, of all worker processes and of this process (the client), and the seconds per second the dev
server's and workers' threads waited runnable for a CPU (schedstat), to show what saturates first.
Target: more processes never cost throughput, ratio >= 1.0 at every count. How far above 1.0 it goes
is bounded by the 2 cores the dev server, the workers and other work share (one process uses ~0.7 of a
core, the dev server as much: with 2 processes both cores are taken, so 4 add nothing over 2).

Full size (1, 2, 4 processes x 3 repeats, 120 pipelines; 12 cluster pipelines) took 2 minutes on 2
busy cores; ``--quick`` (1 and 2 processes, 30 pipelines, 4 cluster pipelines) 30 s to 1.5 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import psutil
from temporalio.client import Client, WorkflowHandle

from bench._common import add_common_args, exit_cleanly, load, plot, report
from bench._proc import runqueue_wait_s
from landscape.kubeapi.part import KubeApiServer
from landscape.temporal import TemporalDevServer
from tests.chaos.common import create_cluster_step, start_worker, stop_workers
from tests.support import pipeline
from workers.cli.pipeline import start_pipeline
from workers.config import data_converter

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.0  # ratio to the 1-process baseline, at every count


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
    queue: str
    processes: int
    pipelines: int
    steps: int
    seconds: float
    server_cpu: float
    worker_cpu: float
    client_cpu: float
    start_seconds: float
    cpu_wait: float  # seconds per wall second the dev server's and workers' threads waited runnable for a CPU

    @property
    def per_second(self) -> float:
        return self.pipelines / self.seconds

    def progress(self, rep: int) -> None:
        print(
            f"{self.queue} queue, {self.processes} worker proc(s) #{rep}: {self.pipelines} pipelines in "
            f"{self.seconds:.1f} s = {self.per_second:.2f}/s, {self.steps / self.seconds:.1f} steps/s "
            f"(all started after {self.start_seconds:.1f} s); CPU (cores) dev server {self.server_cpu:.2f}, "
            f"workers {self.worker_cpu:.2f}, bench {self.client_cpu:.2f}; waited for a CPU {self.cpu_wait:.2f} s/s; "
            f"{load()}",
            flush=True,
        )


def start_workers(env: dict[str, str], queues: str, n: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    return [
        start_worker(env, queues, logs / f"{queues.replace(',', '+')}-{i}-{uuid.uuid4().hex[:4]}.log") for i in range(n)
    ]


def cpu_wait(pids: Sequence[int]) -> float:
    """Seconds the processes' threads so far waited runnable for a CPU (the cores, not our code, are short)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += runqueue_wait_s(pid)
    return total


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def start(client: Client, definition: dict[str, Any], inputs: dict[str, Any]) -> WorkflowHandle[Any, Any]:
    """Start one pipeline with a unique id (the default id's 4 hex digits per second collide in a batch of
    100 started within a second: WorkflowAlreadyStartedError)."""
    return await start_pipeline(client, definition, inputs, workflow_id=f"scale-{uuid.uuid4().hex}")


async def batch(
    client: Client,
    queue: str,
    definition: dict[str, Any],
    inputs: list[dict[str, Any]],
    steps_each: int,
    server_pids: Sequence[int],
    worker_procs: Sequence[subprocess.Popen[bytes]],
    processes: int,
    warmup: Sequence[dict[str, Any]] = (),
) -> Figure:
    # Warm up: let every process import, connect and poll before the clock starts, then (``warmup``
    # pipelines, untimed) load each one's workflow sandbox and connections: a fresh process's first tasks
    # pay for them.
    await asyncio.sleep(3.0)
    if warmup:
        warm = await asyncio.gather(*(start(client, definition, i) for i in warmup))
        await asyncio.gather(*(h.result() for h in warm))
    worker_pids = [p.pid for p in worker_procs]
    me = [os.getpid()]
    q0 = cpu_wait([*server_pids, *worker_pids])
    s0, w0, c0, t0 = cpu_seconds(server_pids), cpu_seconds(worker_pids), cpu_seconds(me), time.monotonic()
    handles = await asyncio.gather(*(start(client, definition, i) for i in inputs))
    started = time.monotonic() - t0
    results = asyncio.gather(*(h.result() for h in handles))
    while not results.done():
        await asyncio.wait([results], timeout=1.0)
        if not results.done() and all(p.poll() is not None for p in worker_procs):
            results.cancel()
            raise RuntimeError(f"every worker process exited; see their logs ({queue}, {processes} procs)")
    await results
    seconds = time.monotonic() - t0
    wall = max(seconds, 1e-6)
    return Figure(
        queue,
        processes,
        len(inputs),
        steps_each * len(inputs),
        seconds,
        (cpu_seconds(server_pids) - s0) / wall,
        (cpu_seconds(worker_pids) - w0) / wall,
        (cpu_seconds(me) - c0) / wall,
        started,
        (cpu_wait([*server_pids, *worker_pids]) - q0) / wall,
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
                    echo, warm = echo_pipeline(), [dict[str, Any]()] * (4 * n)
                    fig = await batch(client, "pipeline", echo, [{}] * pipelines, 6, server_pids, procs, n, warm)
                finally:
                    stop_workers(procs)
                fig.progress(rep + 1)
                figures.append(fig)
    finally:
        server.stop()
    return figures


async def layer_scaling(state: Path, pipelines: int, counts: Sequence[int] = (1, 2)) -> list[Figure]:
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
            for n in counts:
                procs = start_workers(env, "gardener", n, logs)
                try:
                    sites = [{"site": f"s{uuid.uuid4().hex[:8]}"} for _ in range(pipelines + 2 * n)]
                    fig = await batch(
                        client,
                        "gardener",
                        cluster_pipeline(),
                        sites[2 * n :],
                        1,
                        server_pids,
                        [*pipeline_procs, *procs],
                        n,
                        warmup=sites[: 2 * n],
                    )
                finally:
                    stop_workers(procs)
                fig.progress(1)
                figures.append(fig)
        finally:
            stop_workers(pipeline_procs)
    finally:
        garden.stop()
        server.stop()
    return figures


@dataclass
class Row:
    """One worker count of one queue: medians over its repeats, the ratio to the lowest count."""

    queue: str
    processes: int
    runs: int
    per_second: float
    steps_per_second: float
    ratio: float
    server_cpu: float
    worker_cpu: float
    client_cpu: float
    cpu_wait: float
    baseline: bool

    @property
    def verdict(self) -> str:
        return "baseline" if self.baseline else ("met" if self.ratio >= TARGET else "NOT met")

    def cells(self) -> list[object]:
        return [*astuple(self)[:-1], self.verdict]  # the fields in order, the verdict for ``baseline``


def rows_of(figures: list[Figure]) -> list[Row]:
    by_n: dict[int, list[Figure]] = {}
    for f in figures:
        by_n.setdefault(f.processes, []).append(f)
    base = statistics.median(f.per_second for f in by_n[min(by_n)])
    rows = []
    for n, figs in sorted(by_n.items()):
        per_s = statistics.median(f.per_second for f in figs)
        rows.append(
            Row(
                figs[0].queue,
                n,
                len(figs),
                per_s,
                statistics.median(f.steps / f.seconds for f in figs),
                per_s / base,
                statistics.median(f.server_cpu for f in figs),
                statistics.median(f.worker_cpu for f in figs),
                statistics.median(f.client_cpu for f in figs),
                statistics.median(f.cpu_wait for f in figs),
                n == min(by_n),
            )
        )
    return rows


def saturates(rows: list[Row]) -> str:
    """At the largest count of the pipeline queue: the machine's cores when the dev server's and the
    workers' threads waited longer for a CPU than they ran, else the busiest of our processes."""
    last = ([r for r in rows if r.queue == "pipeline"] or rows)[-1]
    cpu = {"the dev server": last.server_cpu, "the worker processes": last.worker_cpu, "this process": last.client_cpu}
    order = sorted(cpu.items(), key=lambda kv: -kv[1])
    ran = last.server_cpu + last.worker_cpu
    first = (
        f"the machine's {psutil.cpu_count()} shared cores (other work takes them too)"
        if last.cpu_wait >= ran
        else order[0][0]
    )
    return (
        f"at {last.processes} worker processes, {first}: the dev server's and workers' threads waited "
        f"{last.cpu_wait:.2f} s per s runnable for a CPU while running {ran:.2f} cores; by process "
        + ", ".join(f"{k} {v:.2f}" for k, v in order)
        + f" cores (of {psutil.cpu_count()}); the busiest of ours is {order[0][0]}"
    )


async def main_async(args: argparse.Namespace, counts: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="apeiro-scale-") as tmp:
        figures = await engine_scaling(Path(tmp), counts, args.pipelines, args.repeat)
        layered = await layer_scaling(Path(tmp), args.clusters) if args.layers else []
    rows = rows_of(figures) + (rows_of(layered) if layered else [])
    series: dict[str, Sequence[tuple[float, float]]] = {
        f"{queue} queue ({what})": [(r.processes, r.ratio) for r in rows if r.queue == queue]
        for queue, what in (("pipeline", "echo, 6 steps"), ("gardener", "cluster.create"))
    }
    base = rows[0].per_second
    path = plot(
        "scale",
        f"throughput vs worker processes (1 process: {base:.2f} pipelines/s = 1.0)",
        "worker processes serving the queue",
        "throughput / 1 process",
        series,
        hline=(TARGET, f"target >= {TARGET:.1f}x of 1 process"),
    )
    met = all(r.verdict != "NOT met" for r in rows)
    report(
        "scale",
        title=f"the same batch on more worker processes ({args.pipelines} echo pipelines, x{args.repeat} interleaved"
        + (f"; {args.clusters} cluster pipelines on the gardener queue" if layered else "")
        + "; CPU in cores)",
        header=[
            "queue",
            "procs",
            "runs",
            "pipelines/s",
            "steps/s",
            "ratio to 1 proc",
            "dev server CPU",
            "workers CPU",
            "bench CPU",
            "CPU wait s/s",
            "target",
        ],
        rows=[r.cells() for r in rows],
        target=f"baseline (same run): the 1-process figure of the same queue; target: ratio >= {TARGET:.1f} at every "
        f"count (more processes never cost throughput; how far above 1.0 is bounded by the {psutil.cpu_count()} cores "
        f"the dev server, the workers and other work share: see the CPU columns) -- {'met' if met else 'NOT met'}",
        saturates=saturates(rows),
        plot_path=path,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(parser)
    parser.add_argument("--levels", type=int, nargs="+", help="worker process counts (default 1 2 4; --quick 1 2)")
    parser.add_argument("--workers", help="the same as --levels, comma-separated (e.g. 1,2,4)")
    parser.add_argument("--pipelines", type=int, help="pipelines per batch, 6 steps each (default 120; --quick 30)")
    parser.add_argument("--repeat", type=int, help="interleaved repeats of each worker count (default 3; --quick 1)")
    parser.add_argument(
        "--layers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the gardener layer with 1 and 2 processes (default on)",
    )
    parser.add_argument("--clusters", type=int, help="cluster pipelines in the layer run (default 12; --quick 4)")
    args = parser.parse_args()
    if args.levels and args.workers:
        parser.error("give --levels or --workers, not both")
    try:
        counts = args.levels or ([int(x) for x in args.workers.split(",")] if args.workers else None)
    except ValueError:
        parser.error(f"--workers takes comma-separated counts, e.g. 1,2,4 (got {args.workers!r})")
    counts = sorted(set(counts or ([1, 2] if args.quick else [1, 2, 4])))
    if counts[0] < 1:
        parser.error("worker counts must be 1 or more")
    args.pipelines = args.pipelines or (30 if args.quick else 120)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.clusters = args.clusters or (4 if args.quick else 12)
    asyncio.run(main_async(args, counts))
    exit_cleanly(0)  # sdk-python issue 300: no interpreter teardown with Temporal's threads alive


if __name__ == "__main__":
    main()
