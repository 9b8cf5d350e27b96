"""Benchmark: the webhook gateway swept from 25 to 400 deliveries/s (30% duplicates) vs direct starts.

Run: ``python -m bench.webhook [--quick] [--rates 25 50 100 200 400] [--seconds 10]``. In one run it
starts a Temporal dev server and the gateway (``apeiro webhook serve``, uvicorn, its own process);
then for each offered rate:

1. the baseline: the same number of distinct events started directly with ``client.start_workflow``
   (same id policies, same PipelineRequest, same search attribute; no HTTP, no auth, no validation);
2. the load: signed deliveries at that rate to the generic route, 30% of them repeating an event
   already sent (same Idempotency-Key), open loop (a sender does not wait for the previous answer).

It prints one row per rate (accepted/s, p50/p99, 503s shed past the admission bound, errors, and
accepted events whose workflow is missing: must be 0), the knee of each curve (p99 > 250 ms), and
writes bench/results/webhook.png. No worker runs: the figure is the cost of accepting and starting.
A 503 without Retry-After counts as an error. Per level it also prints where an accepted
delivery's time went: waiting in the client for a connection, the gateway's own request-duration
histogram (from its /metrics), and each process's CPU.

The deliveries go through ``bench._http.LoadClient`` (aiohttp, keep-alive connections, a fraction
of httpx's CPU per request): with one httpx.AsyncClient the load generator used ~90% of a core at
200-400/s and its requests waited 11-34 s (p50) in its own pool before leaving the process, so the
bench measured itself, not the gateway.
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

import aiohttp
import httpx
import psutil
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from bench._common import add_common_args, exit_cleanly, plot, report
from bench._http import LoadClient
from definitions import queues
from definitions import search_attributes as sa
from definitions.runs import PipelineRequest
from landscape.landscape import Landscape
from landscape.process import free_port
from landscape.temporal import TemporalDevServer
from tests.support import pipeline
from triggers.auth import sign
from workers.config import data_converter

REPO = Path(__file__).resolve().parents[1]
KEY = "bench-key"
PIPELINE = pipeline(
    [{"name": "echo", "uses": "core.echo", "with": {"values": {"n": "${{ inputs.n }}"}}}],
    name="bench-echo",
    inputs={"n": {"type": "integer"}},
)
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


async def baseline(
    client: Client, rate: float, distinct: int, definition: dict[str, Any], tag: str
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0

    async def send(i: int) -> None:
        nonlocal errors
        t = time.perf_counter()
        try:
            await client.start_workflow(
                "PipelineWorkflow",
                PipelineRequest(definition=definition, inputs={"n": i}),
                id=f"baseline-{tag}-{i}",
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


async def gateway_level(
    lean: LoadClient, client: Client, rate: float, seconds: float, duplicates: float, tag: str
) -> dict[str, Any]:
    """Offer ``rate`` signed deliveries/s for ``seconds`` (``duplicates`` of them repeats)."""
    total = int(rate * seconds)
    rng = random.Random(7)
    sent: list[int] = []
    latencies: list[float] = []
    waits: list[float] = []
    statuses: dict[int, int] = {}
    accepted_events: set[int] = set()

    async def deliver(i: int) -> None:
        if sent and rng.random() < duplicates:
            event = rng.choice(sent)
        else:
            event = i
            sent.append(i)
        body = json.dumps({"inputs": {"n": event}}).encode()
        headers = {
            "content-type": "application/json",
            "x-apeiro-signature": sign(body, KEY),
            "idempotency-key": f"evt-{tag}-{event}",
        }
        t = time.perf_counter()
        try:
            answer = await lean.post("/hooks/pipelines/bench-echo", body, headers)
            code, waited = answer.status, answer.waited
            if code == 503 and "retry-after" not in answer.headers:
                code = -503  # a 503 must say when to retry: without Retry-After it counts as an error
        except (OSError, TimeoutError, aiohttp.ClientError, ValueError):
            code, waited = 0, 0.0
        statuses[code] = statuses.get(code, 0) + 1
        if code == 202:
            latencies.append(time.perf_counter() - t)
            waits.append(waited)
            accepted_events.add(event)

    t0 = time.perf_counter()
    await paced(rate, total, deliver)
    took = time.perf_counter() - t0
    started = await count_runs(
        client, f'WorkflowId STARTS_WITH "pipelines-bench-echo-evt-{tag}-"', len(accepted_events)
    )
    accepted = statuses.get(202, 0)
    return {
        "per_s": accepted / took,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
        "shed": statuses.get(503, 0),
        "errors": total - accepted - statuses.get(503, 0),
        "lost": len(accepted_events) - started,
        "distinct": len(set(sent)),
        "other": {c: n for c, n in statuses.items() if c not in (202, 503)},
        "client_wait_p50": pct(waits, 0.5),
        "client_wait_p99": pct(waits, 0.99),
    }


async def scrape(http: httpx.AsyncClient, url: str, name: str = "apeiro_webhook_request_seconds") -> dict[str, float]:
    """The gateway's own histogram ``name`` (all routes): cumulative bucket counts by ``le``, plus sum and count."""
    text = (await http.get(f"{url}/metrics")).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        key, _, value = line.rpartition(" ")
        if key.startswith(f"{name}_bucket"):
            le = key.split('le="', 1)[1].split('"', 1)[0]
            out[le] = out.get(le, 0.0) + float(value)
        elif key.startswith(f"{name}_sum"):
            out["sum"] = out.get("sum", 0.0) + float(value)
        elif key.startswith(f"{name}_count"):
            out["count"] = out.get("count", 0.0) + float(value)
    return out


def bucket_quantile(before: dict[str, float], after: dict[str, float], q: float) -> float:
    """Upper bucket bound holding quantile ``q`` of the observations between two scrapes (s; inf past the last)."""
    total = after.get("count", 0.0) - before.get("count", 0.0)
    if total <= 0:
        return float("nan")
    for le in sorted((k for k in after if k not in ("sum", "count")), key=float):
        if after[le] - before.get(le, 0.0) >= q * total:
            return float(le)
    return float("inf")


def knee(rows: list[tuple[float, float]], limit: float = 0.25) -> float | None:
    """The first offered rate whose p99 passes ``limit`` seconds (None: not reached)."""
    return next((rate for rate, p99 in rows if not p99 <= limit), None)


async def run(args: argparse.Namespace) -> None:
    rates: list[float] = args.rates
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        d = Path(tmp)
        defs = d / "defs"
        defs.mkdir()
        (defs / "bench-echo.yaml").write_text(json.dumps(PIPELINE))
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
            rows: list[list[object]] = []
            direct_p99: list[tuple[float, float]] = []
            gw_p99: list[tuple[float, float]] = []
            cpu: dict[str, float] = {}
            where: list[str] = []
            try:
                url = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=500)) as http:
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
                    definition = PIPELINE
                    procs = {"gateway": psutil.Process(gateway.pid), "load generator": psutil.Process()}
                    procs.update({f"temporal dev server ({pid})": psutil.Process(pid) for pid in server.pids})
                    sweep_start = time.monotonic()
                    cpu_start = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
                    for level, rate in enumerate(rates):
                        tag = f"l{level}"
                        distinct = int(rate * args.seconds * (1 - args.duplicates))
                        lean = LoadClient("127.0.0.1", port)
                        print(f"offered {rate:.0f}/s: {distinct} direct starts, then the gateway ...", flush=True)
                        base = await baseline(client, rate, distinct, definition, tag)
                        before = await scrape(http, url)
                        for p in procs.values():
                            p.cpu_percent(None)
                        gw = await gateway_level(lean, client, rate, args.seconds, args.duplicates, tag)
                        await lean.aclose()
                        level_cpu = {name: p.cpu_percent(None) for name, p in procs.items()}
                        after = await scrape(http, url)
                        inside = {q: bucket_quantile(before, after, q) for q in (0.5, 0.99)}
                        where.append(
                            f"  {rate:.0f}/s: accepted p50/p99 {gw['p50'] * 1000:.0f}/{gw['p99'] * 1000:.0f} ms = "
                            f"client wait for a connection p50/p99 {gw['client_wait_p50'] * 1000:.0f}/"
                            f"{gw['client_wait_p99'] * 1000:.0f} ms + gateway; errors by status "
                            f"{gw['other'] or 'none'}; "
                            "gateway's own handler (all "
                            f"answers) p50 <= {inside[0.5] * 1000:.0f} ms, p99 <= {inside[0.99] * 1000:.0f} ms; CPU "
                            + ", ".join(f"{n} {c:.0f}%" for n, c in level_cpu.items())
                        )
                        print(where[-1], flush=True)
                        rows.append(
                            [
                                int(rate),
                                base["per_s"],
                                base["p50"] * 1000,
                                base["p99"] * 1000,
                                gw["per_s"],
                                gw["p50"] * 1000,
                                gw["p99"] * 1000,
                                gw["shed"],
                                gw["errors"] + base["errors"],
                                gw["lost"],
                            ]
                        )
                        direct_p99.append((rate, base["p99"]))
                        gw_p99.append((rate, gw["p99"]))
                    wall = time.monotonic() - sweep_start
                    cpu = {name: 100 * (sum(p.cpu_times()[:2]) - cpu_start[name]) / wall for name, p in procs.items()}
            finally:
                gateway.terminate()
                gateway.wait(timeout=15)
        k_direct, k_gw = knee(direct_p99), knee(gw_p99)
        path = plot(
            "webhook",
            f"webhook gateway vs direct start_workflow ({args.duplicates:.0%} duplicates)",
            "offered deliveries/s",
            "p99 latency (ms)",
            {
                "gateway (HTTP, HMAC, dedup)": [(r, p * 1000) for r, p in gw_p99],
                "direct client.start_workflow": [(r, p * 1000) for r, p in direct_p99],
            },
            hline=(250, "knee: p99 = 250 ms"),
            logx=True,
        )
        top = max(cpu.items(), key=lambda kv: kv[1]) if cpu else ("?", 0.0)
        ratio = (k_gw or rates[-1] * 2) / (k_direct or rates[-1] * 2)
        report(
            "webhook",
            title="webhook gateway + dev server: offered load sweep (one worker-less dev server; 503 = shed)",
            header=[
                "offered/s",
                "direct/s",
                "direct p50",
                "direct p99",
                "gateway/s",
                "gw p50",
                "gw p99",
                "503 shed",
                "errors",
                "lost",
            ],
            rows=rows,
            target=f"gateway knee >= 0.8 x direct knee; knees (p99 > 250 ms): gateway "
            f"{k_gw or 'not reached'}, direct {k_direct or 'not reached'} (ratio {ratio:.2f}) -- "
            f"{'met' if ratio >= 0.8 else 'NOT met'}; lost must be 0 -- "
            f"{'met' if all(r[-1] == 0 for r in rows) else 'NOT met'}",
            saturates=(
                f"{top[0]} ({top[1]:.0f}% of a core on average over the sweep)"
                if top[1] >= 80
                else f"none of ours reached a core (busiest: {top[0]}, {top[1]:.0f}%); the machine's other load "
                f"(load average {os.getloadavg()[0]:.1f} on {psutil.cpu_count()} cores) limits first"
            )
            + "; past the admission bound the gateway sheds with 503",
            plot_path=path,
        )
        print("where an accepted delivery's time goes, per level (client = waiting for/opening a connection):")
        print("\n".join(where))
        await asyncio.sleep(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--rates", type=float, nargs="+", help="offered deliveries/s (default 25 50 100 200 400)")
    parser.add_argument("--seconds", type=float, help="seconds per load level (default 10; quick 3)")
    parser.add_argument("--duplicates", type=float, default=0.3, help="share of deliveries repeating an event")
    args = parser.parse_args()
    args.rates = args.rates or ([25.0, 100.0] if args.quick else [25.0, 50.0, 100.0, 200.0, 400.0])
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    asyncio.run(run(args))
    exit_cleanly(0)


if __name__ == "__main__":
    main()
