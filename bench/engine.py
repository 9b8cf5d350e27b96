"""Benchmark: the pipeline engine's throughput curve and its two big shapes, one worker process.

Run: ``python -m bench.engine [--quick] [--parts throughput dag foreach] [--batches 10 30 100]
[--dag-steps 1000] [--items 10000] [--profile FILE]``. In one run it starts a Temporal dev server and
one ``pipeline`` worker in its own process (so its RSS is its own), then measures:

1. throughput: for each batch size N, N trivial 10-step pipelines (a chain of ``core.echo``) started
   at once, pipelines/s until all finished; and, as the same-run baseline, N hand-written workflows
   running the same 10 activities (``HandWrittenDag``: no definition, no CEL, no bookkeeping);
2. a 1,000-step DAG (100 layers x 10) and a 10,000-item ``forEach``: wall time, the largest history
   among the workflow and its children / continued runs, and the worker's peak RSS; as the same-run
   baseline, the same activities hand-written (10 wide for the DAG, 50 at a time for the forEach).

``--profile FILE`` runs the worker under cProfile (every thread: the event loop and the workflow
activation threads) and writes FILE (pstats) plus the top entries to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench._common import add_common_args, exit_cleanly, load, plot, report
from tests.chaos.common import stop_workers
from tests.support import pipeline

REPO = Path(__file__).resolve().parents[1]
HAND_QUEUE = "bench-hand-written"
PARTS = ("throughput", "dag", "foreach")
HISTORY_LIMIT = 51_200
FOREACH_PARALLEL = 50


def chain(steps: int) -> dict[str, Any]:
    out = []
    for i in range(steps):
        step: dict[str, Any] = {"name": f"s{i}", "uses": "core.echo", "with": {"values": {"n": i}}}
        if i:
            step["needs"] = [f"s{i - 1}"]
        out.append(step)
    return pipeline(out, name="bench-chain")


def for_each(items: int) -> dict[str, Any]:
    each = {
        "name": "each",
        "uses": "core.echo",
        "forEach": list(range(items)),
        "maxParallel": FOREACH_PARALLEL,
        "with": {"values": {"i": "${{ item }}"}},
    }
    return pipeline([each], name="bench-foreach")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the worker process -----------------------------------------------------------------------------


def worker_main(address: str, profile: str | None) -> None:
    """The pipeline worker (and the hand-written baseline's); under cProfile in every thread if asked."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_thread_profile(*_a: Any) -> None:
        p = cProfile.Profile()
        with lock:
            profiles.append(p)
        p.enable()  # replaces this bootstrap hook for the thread

    if profile:
        threading.setprofile(start_thread_profile)
        main_profile = cProfile.Profile()
        profiles.append(main_profile)
        main_profile.enable()

    async def run() -> None:
        from temporalio.client import Client
        from temporalio.worker import Worker

        from bench.handwritten import HandWrittenDag
        from definitions import queues
        from workers.config import data_converter
        from workers.worker import build_workers, workflow_runner

        client = await Client.connect(address, data_converter=data_converter())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        workers = build_workers(client, [queues.PIPELINE])
        hand = Worker(client, task_queue=HAND_QUEUE, workflows=[HandWrittenDag], workflow_runner=workflow_runner())
        async with workers[0], hand:
            print("ready", flush=True)
            await stop.wait()

    asyncio.run(run())
    if profile:
        stats: pstats.Stats | None = None
        for p in profiles:
            p.disable()
            try:
                s = pstats.Stats(p)
            except (TypeError, ValueError):  # a thread that never ran anything
                continue
            if stats is None:
                stats = s
            else:
                stats.add(s)
        if stats is not None:
            stats.dump_stats(profile)
    exit_cleanly(0)


# --- the driver -------------------------------------------------------------------------------------


def worker_env(state: Path) -> dict[str, str]:
    """The worker's environment, with bytecode caching on (under ``state``, not in the checkout).

    The workflow sandbox imports a workflow's modules afresh for every run. With
    PYTHONDONTWRITEBYTECODE set (as on the shared development machines) there is no .pyc, so every
    pipeline run compiled workflows/pipeline.py and its helpers from source (~20 ms of CPU, against
    ~1 ms for the hand-written baseline's module): a cost of the machine, not of the engine, that a
    deployed worker (an image with .pyc files) does not pay.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONPYCACHEPREFIX": str(state / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def start_worker(address: str, state: Path, profile: Path | None = None) -> subprocess.Popen[bytes]:
    """This module's worker (the pipeline queue and the hand-written baselines') in its own process,
    once it says it is ready."""
    cmd = [sys.executable, "-m", "bench.engine", "--worker", address, *(["--profile", str(profile)] if profile else [])]
    worker = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=REPO, env=worker_env(state))
    assert worker.stdout is not None
    if worker.stdout.readline().strip() != b"ready":
        raise RuntimeError(f"the worker did not start (exit code {worker.wait()})")
    return worker


async def largest_history(client: Any, workflow_id: str) -> int:
    """Events in the largest history among the workflow's runs (continue-as-new included) and their
    children (one level, at most 200 per run)."""
    largest = 0
    run_id: str | None = None
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        children: list[str] = []
        previous = ""
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_execution_started_event_attributes"):
                previous = event.workflow_execution_started_event_attributes.continued_execution_run_id
            if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
                children.append(event.start_child_workflow_execution_initiated_event_attributes.workflow_id)
            largest = max(largest, event.event_id)
        for child in children[:200]:
            n = 0
            async for event in client.get_workflow_handle(child).fetch_history_events():
                n = event.event_id
            largest = max(largest, n)
        if not previous:
            return largest
        run_id = previous


async def bench(args: argparse.Namespace, state: Path) -> None:
    from temporalio.client import Client

    from bench.handwritten import HandWrittenDag
    from landscape.temporal import TemporalDevServer
    from workers.cli.pipeline import start_pipeline
    from workers.config import data_converter

    temporal = TemporalDevServer(headless=True, persistent=False)
    temporal.start(state / "temporal")
    worker: subprocess.Popen[bytes] | None = None
    try:
        address = temporal.endpoints["address"]
        worker = start_worker(address, state, Path(args.profile).resolve() if args.profile else None)
        client = await Client.connect(address, data_converter=data_converter())
        definition = chain(10)
        # warm-up: sandbox imports, connections
        await (await start_pipeline(client, definition, {}, workflow_id=f"warm-{uuid.uuid4().hex[:6]}")).result()
        await client.execute_workflow(
            HandWrittenDag.run, [10, 1], id=f"warm-{uuid.uuid4().hex[:6]}", task_queue=HAND_QUEUE
        )
        rows: list[list[object]] = []
        eng_pts, hand_pts = [], []

        async def engine_batch(n: int) -> float:
            t0 = time.monotonic()
            handles = await asyncio.gather(
                *(start_pipeline(client, definition, {}, workflow_id=f"e-{uuid.uuid4().hex[:10]}") for _ in range(n))
            )
            await asyncio.gather(*(h.result() for h in handles))
            return time.monotonic() - t0

        async def hand_batch(n: int) -> float:
            t0 = time.monotonic()
            hh = await asyncio.gather(
                *(
                    client.start_workflow(
                        HandWrittenDag.run, [10, 1], id=f"h-{uuid.uuid4().hex[:10]}", task_queue=HAND_QUEUE
                    )
                    for _ in range(n)
                )
            )
            await asyncio.gather(*(h.result() for h in hh))
            return time.monotonic() - t0

        if "throughput" in args.parts:
            for n in args.batches:
                # Alternate the two (engine first, then hand-written first, ...) and add up the times: on a
                # shared machine the load drifts within seconds, and one pass of each gave ratios from
                # 0.5 to 1.5 for the same code.
                e_s = b_s = 0.0
                for r in range(args.repeat):
                    if r % 2 == 0:
                        e_s += await engine_batch(n)
                        b_s += await hand_batch(n)
                    else:
                        b_s += await hand_batch(n)
                        e_s += await engine_batch(n)
                e, b = n * args.repeat / e_s, n * args.repeat / b_s
                rows.append([n, args.repeat, e, b, e / b, peak_rss_mib(worker.pid)])
                eng_pts.append((n, e))
                hand_pts.append((n, b))
            path = plot(
                "engine",
                "10-step pipelines/s vs hand-written workflows/s (1 worker)",
                "workflows started at once",
                "completed/s",
                {"PipelineWorkflow (10 steps)": eng_pts, "hand-written (10 activities)": hand_pts},
                logx=True,
            )
            report(
                "engine",
                title="throughput: trivial 10-step pipelines vs the same activities hand-written",
                header=["batch", "passes", "pipelines/s", "hand-written/s", "ratio", "worker peak RSS MiB"],
                rows=rows,
                target="ratio >= 0.80 -- "
                + ("met" if all(r[4] >= 0.8 for r in rows) else "NOT met")  # type: ignore[operator]
                + " at every batch size",
                saturates="the dev server and the single worker share 2 cores: Temporal's persistence of ~25 "
                "events per workflow saturates first; the ratio is the engine's own cost",
                plot_path=path,
            )

        big: list[list[object]] = []

        async def hand_written(activities: int, width: int) -> float:
            """The same-run baseline: the same activities written by hand (HandWrittenDag: layers of
            `width` activities one after the other, no definition, no CEL, no bookkeeping), in workflows
            of at most 1,000 activities (~3,500 history events each) run one after the other."""
            layers, t0 = max(1, activities // width), time.monotonic()
            while layers > 0:
                run = min(layers, max(1, 1000 // width))
                await client.execute_workflow(
                    HandWrittenDag.run, [run, width], id=f"h-big-{uuid.uuid4().hex[:8]}", task_queue=HAND_QUEUE
                )
                layers -= run
            return time.monotonic() - t0

        for part, label, doc in (
            ("dag", f"{args.dag_steps}-step DAG", dag(args.dag_steps)),
            ("foreach", f"{args.items}-item forEach", for_each(args.items)),
        ):
            if part not in args.parts:
                continue
            # the DAG: 10 wide, layer after layer; the forEach: maxParallel 50 at a time
            steps, width = (args.dag_steps, 10) if part == "dag" else (args.items, FOREACH_PARALLEL)
            base_s = await hand_written(steps, width)
            print(f"baseline: {steps} activities hand-written, {width} at a time: {base_s:.1f} s", flush=True)
            wid = f"big-{uuid.uuid4().hex[:8]}"
            t0 = time.monotonic()
            await (await start_pipeline(client, doc, {}, workflow_id=wid)).result()
            wall = time.monotonic() - t0
            largest = await largest_history(client, wid)
            big.append([label, wall, base_s, base_s / wall, largest, peak_rss_mib(worker.pid)])
            print(f"{label}: {wall:.1f} s, largest history {largest} events, {load()}", flush=True)
        if big:
            ok = all(r[4] < HISTORY_LIMIT for r in big)  # type: ignore[operator]
            report(
                "engine-big",
                title="large pipelines (one worker) vs the same activities hand-written",
                header=[
                    "pipeline",
                    "wall s",
                    "hand-written s",
                    "ratio",
                    "largest history (events)",
                    "worker peak RSS MiB",
                ],
                rows=big,
                target=f"every history below the {HISTORY_LIMIT:,}-event limit (continue-as-new / children keep it "
                f"bounded) -- {'met' if ok else 'NOT met'}; baseline (same run): the hand-written DAG of the same "
                "steps (10 wide), and for the forEach its items hand-written 50 at a time (ratio = hand-written "
                "/ pipeline; the issue sets no speed target here, 0.8 as for throughput is a guide)",
                saturates="Temporal (history persistence of ~3 events per activity) on the shared cores; the "
                "worker stays mostly idle (see its RSS)",
            )
    finally:
        if worker is not None:
            stop_workers([worker], timeout=60)
        temporal.stop()
    if args.profile and Path(args.profile).exists():
        out = io.StringIO()
        pstats.Stats(args.profile, stream=out).sort_stats("cumulative").print_stats(
            r"apeiro|/workflows/|"
            r"/definitions/|/workers/",
            25,
        )
        print(f"\nprofile of the worker ({args.profile}), our code by cumulative time:")
        print("\n".join(out.getvalue().splitlines()[-32:]))


def dag(steps: int, width: int = 10) -> dict[str, Any]:
    from bench.pipeline import dag as layered

    return layered(max(1, steps // width), width)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.split("\n")[0])
    add_common_args(parser)
    parser.add_argument("--batches", type=int, nargs="+", help="pipelines started at once (default 10 30 100)")
    parser.add_argument("--dag-steps", type=int, help="steps of the large DAG (default 1000)")
    parser.add_argument("--items", type=int, help="items of the large forEach (default 10000)")
    parser.add_argument("--repeat", type=int, help="passes per batch size, alternating the order (default 3)")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="what to run (default all): the throughput sweep, the large DAG, the large forEach",
    )
    parser.add_argument("--profile", metavar="FILE", help="run the worker under cProfile, write pstats to FILE")
    parser.add_argument("--worker", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, args.profile)
        return
    args.batches = args.batches or ([5, 20] if args.quick else [10, 30, 100])
    args.repeat = args.repeat or (2 if args.quick else 3)
    args.dag_steps = args.dag_steps or (100 if args.quick else 1000)
    args.items = args.items or (300 if args.quick else 10000)
    with tempfile.TemporaryDirectory(prefix="apeiro-bench-engine-") as d:
        asyncio.run(bench(args, Path(d)))
    exit_cleanly(0)


if __name__ == "__main__":
    main()
