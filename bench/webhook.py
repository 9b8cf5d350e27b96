"""Benchmark: the webhook gateway under a steady load with 30% duplicate deliveries.

Run: ``python -m bench.webhook [--rate 50] [--seconds 30] [--duplicates 0.3]``. In one run it starts a
Temporal dev server and the gateway (``apeiro webhook serve``, uvicorn, its own process), then:

1. the baseline: the same number of distinct events started directly with ``client.start_workflow``
   (same id policies, same PipelineRequest, same search attribute; no HTTP, no auth, no validation) at
   the same rate;
2. the load: ``--rate`` signed deliveries per second for ``--seconds`` to the generic route, of which
   ``--duplicates`` repeat an event already sent (same Idempotency-Key).

It prints accepted/s, p50/p99 latency, errors, workflows started versus distinct events (they must be
equal), the baseline's figures and the ratio, and the CPU each process used, to name the bottleneck.
No worker runs: the figure is the cost of accepting and starting, not of running the pipelines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from definitions import queues
from definitions import search_attributes as sa
from definitions.runs import PipelineRequest
from definitions.validate import load_yaml
from landscape.landscape import Landscape
from landscape.process import free_port
from landscape.temporal import TemporalDevServer
from triggers.auth import sign
from workers.config import data_converter

REPO = Path(__file__).resolve().parents[1]
KEY = "bench-key"
PIPELINE = """
apiVersion: apeiro.dev/v1alpha1
kind: Pipeline
metadata: {name: bench-echo}
spec:
  inputs:
    n: {type: integer}
  steps:
    - {name: echo, uses: core.echo, with: {values: {n: "${{ inputs.n }}"}}}
"""
CONFIG = """
routes:
  - name: pipelines
    source: pipeline
    auth: {type: hmac, secrets: ["env:BENCH_HOOK_KEY"]}
"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def paced(rate: float, count: int, send: Any) -> list[Any]:
    """Open loop: start one send every 1/rate s regardless of answers (a real sender does not wait)."""
    tasks = []
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    return await asyncio.gather(*tasks)


async def baseline(client: Client, rate: float, distinct: int, definition: dict[str, Any]) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0

    async def send(i: int) -> None:
        nonlocal errors
        t = time.perf_counter()
        try:
            await client.start_workflow(
                "PipelineWorkflow",
                PipelineRequest(definition=definition, inputs={"n": i}),
                id=f"baseline-{i}",
                task_queue=queues.PIPELINE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes([SearchAttributePair(sa.PIPELINE, "bench-echo")]),
            )
            latencies.append(time.perf_counter() - t)
        except Exception:
            errors += 1

    t0 = time.perf_counter()
    await paced(rate, distinct, send)
    took = time.perf_counter() - t0
    return {"per_s": len(latencies) / took, "p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99), "errors": errors}


async def count_runs(client: Client, query: str, expect: int) -> int:
    count = -1
    for _ in range(100):
        count = (await client.count_workflows(query)).count
        if count >= expect:
            await asyncio.sleep(1.0)
            return (await client.count_workflows(query)).count
        await asyncio.sleep(0.2)
    return count


async def run(args: argparse.Namespace) -> None:
    total = int(args.rate * args.seconds)
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        d = Path(tmp)
        defs = d / "defs"
        defs.mkdir()
        (defs / "bench-echo.yaml").write_text(PIPELINE)
        (d / "gateway.yaml").write_text(CONFIG)
        landscape = Landscape([TemporalDevServer(headless=True, persistent=False)], state_dir=d / "landscape")
        with landscape.running():
            server = landscape.part("temporal")
            address = server.endpoints["address"]
            client = await Client.connect(address, data_converter=data_converter())
            port = free_port()
            env = {
                **os.environ,
                "TEMPORAL_ADDRESS": address,
                "APEIRO_DEFINITIONS": str(defs),
                "BENCH_HOOK_KEY": KEY,
                "PYTHONPATH": str(REPO),
            }
            # A benchmark harness: blocking Popen before any load runs is fine here.
            gateway = subprocess.Popen(  # noqa: ASYNC220
                [
                    sys.executable,
                    "-m",
                    "workers.cli",
                    "webhook",
                    "serve",
                    "--config",
                    str(d / "gateway.yaml"),
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                url = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as http:
                    for _ in range(200):
                        try:
                            if (await http.get(f"{url}/healthz")).status_code == 200:
                                break
                        except httpx.TransportError:
                            await asyncio.sleep(0.1)
                    else:
                        raise SystemExit(
                            "gateway did not start: " + (gateway.stderr.read().decode() if gateway.stderr else "")
                        )
                    definition = load_yaml(PIPELINE)
                    distinct_expected = total - int(total * args.duplicates)
                    print(f"baseline: {distinct_expected} direct starts at {args.rate:.0f}/s ...", flush=True)
                    base = await baseline(client, args.rate, distinct_expected, definition)

                    procs = {"gateway": psutil.Process(gateway.pid), "load generator": psutil.Process()}
                    procs.update({f"temporal dev server ({pid})": psutil.Process(pid) for pid in server.pids})
                    for p in procs.values():
                        p.cpu_percent(None)
                    psutil.cpu_percent(None)
                    rng = random.Random(7)
                    sent: list[int] = []
                    latencies: list[float] = []
                    statuses: dict[int, int] = {}
                    distinct: set[int] = set()

                    async def deliver(i: int) -> None:
                        if sent and rng.random() < args.duplicates:
                            event = rng.choice(sent)
                        else:
                            event = i
                            sent.append(i)
                        distinct.add(event)
                        body = json.dumps({"inputs": {"n": event}}).encode()
                        headers = {
                            "content-type": "application/json",
                            "x-apeiro-signature": sign(body, KEY),
                            "idempotency-key": f"evt-{event}",
                        }
                        t = time.perf_counter()
                        try:
                            resp = await http.post(f"{url}/hooks/pipelines/bench-echo", content=body, headers=headers)
                            code = resp.status_code
                        except httpx.HTTPError:
                            code = 0
                        statuses[code] = statuses.get(code, 0) + 1
                        if code == 202:
                            latencies.append(time.perf_counter() - t)

                    print(
                        f"load: {total} deliveries at {args.rate:.0f}/s for {args.seconds:.0f}s, "
                        f"{args.duplicates:.0%} duplicates ...",
                        flush=True,
                    )
                    t0 = time.perf_counter()
                    await paced(args.rate, total, deliver)
                    took = time.perf_counter() - t0
                    cpu = {name: p.cpu_percent(None) for name, p in procs.items()}
                    machine = psutil.cpu_percent(None)
                    load = os.getloadavg()[0]
                    started = await count_runs(
                        client, 'WorkflowId STARTS_WITH "pipelines-bench-echo-evt-"', len(distinct)
                    )
            finally:
                gateway.terminate()
                gateway.wait(timeout=15)
        accepted = statuses.get(202, 0)
        errors = total - accepted
        print("\n=== webhook gateway + dev server ===")
        print(f"deliveries      {total} in {took:.1f}s (offered {args.rate:.0f}/s)")
        print(
            f"accepted/s      {accepted / took:.1f}   (202: {accepted}; other answers: "
            f"{ {k: v for k, v in statuses.items() if k != 202} or 'none' })"
        )
        print(f"latency         p50 {pct(latencies, 0.5) * 1000:.1f} ms   p99 {pct(latencies, 0.99) * 1000:.1f} ms")
        print(
            f"workflows       started {started}, distinct events {len(distinct)} -> "
            f"{'EQUAL' if started == len(distinct) else 'MISMATCH'}"
        )
        print(f"errors          {errors}")
        print("\n=== baseline: client.start_workflow directly (no HTTP, no validation) ===")
        print(
            f"starts/s        {base['per_s']:.1f}   p50 {base['p50'] * 1000:.1f} ms   p99 {base['p99'] * 1000:.1f} ms"
            f"   errors {base['errors']:.0f}"
        )
        if base["p50"] and latencies:
            print(
                f"\nratio           gateway p50 / direct p50 = {pct(latencies, 0.5) / base['p50']:.2f}x, "
                f"accepted/s / direct starts/s = {accepted / took / base['per_s']:.2f}"
            )
        print("\nCPU during the load (% of one core):")
        for name, value in sorted(cpu.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<32} {value:6.1f}")
        print(
            f"  whole machine                    {machine:6.1f} % of all {psutil.cpu_count()} cores "
            f"(load average {load:.1f}; other users' processes included)"
        )
        top = max(cpu.items(), key=lambda kv: kv[1])
        ours = sum(cpu.values()) / (100 * (psutil.cpu_count() or 1)) * 100
        if machine > 90:
            print(
                f"bottleneck: the machine's CPUs are saturated ({machine:.0f}%, ours {ours:.0f}% of it): every "
                "process gets a share; figures are a lower bound"
            )
        elif pct(latencies, 0.99) > 1.0:
            print(
                f"bottleneck: answers queue (p99 > 1 s) at {args.rate:.0f}/s; {top[0]} used the most CPU "
                f"({top[1]:.0f}% of a core)"
            )
        else:
            print(
                f"bottleneck: none reached at {args.rate:.0f}/s; the busiest process is {top[0]} "
                f"({top[1]:.0f}% of a core), so the dev server limits first as the rate rises"
            )
        await asyncio.sleep(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=30.0, help="deliveries per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--duplicates", type=float, default=0.3, help="share of deliveries repeating an event")
    args = parser.parse_args()
    asyncio.run(run(args))
    sys.stdout.flush()
    os._exit(0)  # sdk-python issue 300: avoid teardown crashes after the work is done


if __name__ == "__main__":
    main()
