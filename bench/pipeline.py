"""Engine overhead: a 50-step DAG through PipelineWorkflow vs. the same activities from a hand-written
workflow, on the same dev server and worker, in the same run.

    python -m bench.pipeline [--runs 5] [--layers 5] [--width 10]

Prints the median wall time of each and the ratio (target: the engine costs at most 1.3x).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from bench._common import exit_cleanly
from bench.handwritten import HandWrittenDag
from definitions import queues
from definitions.runs import PipelineRequest
from landscape.landscape import Landscape
from landscape.temporal import TemporalDevServer
from tests.support import pipeline
from workers.config import data_converter
from workers.worker import build_workers, workflow_runner

HAND_QUEUE = "bench-hand-written"


def dag(layers: int, width: int) -> dict[str, Any]:
    steps = []
    for layer in range(layers):
        for j in range(width):
            step: dict[str, Any] = {
                "name": f"l{layer}_s{j}",
                "uses": "core.echo",
                "with": {"values": {"layer": layer, "n": j}},
            }
            if layer:
                step["needs"] = [f"l{layer - 1}_s{k}" for k in range(width)]
                step["with"]["values"]["prev"] = f"${{{{ steps.l{layer - 1}_s0.outputs.n }}}}"
            steps.append(step)
    return pipeline(steps, name="bench-dag")


async def timed(coro: Any) -> float:
    start = time.perf_counter()
    await coro
    return time.perf_counter() - start


async def measure(client: Client, runs: int, layers: int, width: int) -> tuple[list[float], list[float]]:
    definition = dag(layers, width)
    engine: list[float] = []
    hand: list[float] = []
    workers = build_workers(client, [queues.PIPELINE])
    async with (
        workers[0],
        Worker(client, task_queue=HAND_QUEUE, workflows=[HandWrittenDag], workflow_runner=workflow_runner()),
    ):
        # One warm-up of each (sandbox imports, connections), then alternate to share any drift fairly.
        for _ in range(runs + 1):
            e = await timed(
                client.execute_workflow(
                    "PipelineWorkflow",
                    PipelineRequest(definition=definition),
                    id=f"bench-engine-{uuid.uuid4().hex[:8]}",
                    task_queue=queues.PIPELINE,
                )
            )
            h = await timed(
                client.execute_workflow(
                    HandWrittenDag.run, [layers, width], id=f"bench-hand-{uuid.uuid4().hex[:8]}", task_queue=HAND_QUEUE
                )
            )
            engine.append(e)
            hand.append(h)
    return engine[1:], hand[1:]


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        landscape = Landscape([TemporalDevServer(headless=True, persistent=False)], state_dir=Path(tmp))
        with landscape.running():
            client = await Client.connect(
                landscape.part("temporal").endpoints["address"], data_converter=data_converter()
            )
            engine, hand = await measure(client, args.runs, args.layers, args.width)
    steps = args.layers * args.width
    me, mh = statistics.median(engine), statistics.median(hand)
    print(
        f"bench.pipeline: {steps}-step DAG ({args.layers} layers x {args.width}), {args.runs} runs each, "
        "dev server + 1 worker on this machine"
    )
    print(f"  PipelineWorkflow (engine):     median {me:.3f}s  (min {min(engine):.3f}s, max {max(engine):.3f}s)")
    print(f"  hand-written workflow (base):  median {mh:.3f}s  (min {min(hand):.3f}s, max {max(hand):.3f}s)")
    print(f"  ratio engine/hand-written:     {me / mh:.2f}x  (target <= 1.30x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--width", type=int, default=10)
    asyncio.run(main_async(parser.parse_args()))
    exit_cleanly(0)  # sdk-python issue 300: no interpreter teardown with Temporal's threads alive


if __name__ == "__main__":
    main()
