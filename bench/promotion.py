"""Benchmark: 20 promotions in flight at once across 3 rings with soak and metric gates (dev server).

Run: ``python -m bench.promotion [--runs 20]``. Starts a Temporal dev server, the landscape API server
with the simulated Konfidence Stage controller, a real Prometheus scraping the sample workload, and a
``konfidence`` worker in this process. Each promotion has its own pipeline (so none supersedes another)
with rings dev -> canary -> production, one Stage each; every ring verifies with a 2 s soak and a
Prometheus gate (3 measurements, 1 s apart) running concurrently.

Figures: the baseline (one promotion alone), the total time of ``--runs`` promotions started at once,
their ratio, the gate evaluation overhead (a gate's duration minus its nominal duration: the soak, or
(count-1) x interval), median and max, and the CPU seconds this process (worker + client) used.
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

import psutil
from temporalio.client import Client

from definitions import queues
from definitions.promotion_runs import PromotionOutcome, PromotionRequest
from landscape.kubeapi.part import KubeApiServer
from landscape.prometheus import Prometheus
from landscape.temporal import TemporalDevServer
from workers.config import data_converter
from workers.worker import build_workers

SOAK_S = 2.0
INTERVAL_S = 1.0
COUNT = 3


def definition(name: str, kubeconfig: str, prometheus: str) -> dict[str, Any]:
    def ring(ring_name: str) -> dict[str, Any]:
        return {
            "name": ring_name,
            "targets": [{"stage": f"{name}-{ring_name}", "kubeconfig": kubeconfig}],
            "verifyGates": [
                {"type": "soak", "duration": f"{SOAK_S}s"},
                {
                    "type": "prometheus",
                    "name": "errors",
                    "query": "max(sample_error_ratio)",
                    "successCondition": "result < 0.05",
                    "interval": f"{INTERVAL_S}s",
                    "count": COUNT,
                },
            ],
        }

    return {
        "metadata": {"name": name},
        "spec": {
            "artifact": {"component": "example.apeiro.dev/edge-app", "repository": "http://bench"},
            "defaults": {"prometheus": prometheus},
            "rings": [ring("dev"), ring("canary"), ring("production")],
        },
    }


async def promote(client: Client, kubeconfig: str, prometheus: str) -> PromotionOutcome:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    request = PromotionRequest(
        promotion=definition(name, kubeconfig, prometheus), version="1.0.0", requested_by="bench"
    )
    handle = await client.start_workflow(
        "PromotionWorkflow", request, id=f"promotion-{name}-1.0.0", task_queue=queues.KONFIDENCE
    )
    out = PromotionOutcome.model_validate(await handle.result())
    await client.get_workflow_handle(f"promotion-coordinator-{name}").terminate("bench done")
    if out.status.state.value != "Succeeded":
        raise RuntimeError(f"{name}: {out.status.state.value}: {out.status.message}")
    return out


def overheads(outcomes: list[PromotionOutcome]) -> list[float]:
    result = []
    for out in outcomes:
        for attempt in out.audit:
            for gate in attempt.gates:
                if gate.started_at is None or gate.finished_at is None:
                    continue
                nominal = SOAK_S if gate.type == "soak" else (COUNT - 1) * INTERVAL_S
                result.append((gate.finished_at - gate.started_at).total_seconds() - nominal)
    return result


async def run(runs: int, state: Path) -> None:
    temporal = TemporalDevServer(headless=True)
    api = KubeApiServer(
        plugins=("landscape.kubeapi.extra_kinds", "landscape.konfidence"),
        settings={"konfidence.deploySeconds": "0.2"},
        seed_garden=False,
    )
    prom = Prometheus(scrape_interval="1s")
    parts = [temporal, api, prom]
    try:
        for part in parts:
            part.start(state / part.name)
        await asyncio.sleep(2.5)  # two scrapes
        client = await Client.connect(temporal.endpoints["address"], data_converter=data_converter())
        kubeconfig, prometheus = api.endpoints["kubeconfig"], prom.endpoints["url"]
        proc = psutil.Process()
        async with build_workers(client, [queues.KONFIDENCE])[0]:
            t0 = time.monotonic()
            base = await promote(client, kubeconfig, prometheus)
            baseline = time.monotonic() - t0
            cpu0 = proc.cpu_times()
            t0 = time.monotonic()
            outs = await asyncio.gather(*(promote(client, kubeconfig, prometheus) for _ in range(runs)))
            total = time.monotonic() - t0
            cpu1 = proc.cpu_times()
        server_cpu = sum(
            p.cpu_times().user + p.cpu_times().system
            for part in parts
            for p in [psutil.Process(pid) for pid in part.pids]
        )
        over = overheads(list(outs))
        base_over = overheads([base])
        nominal = 3 * max(SOAK_S, (COUNT - 1) * INTERVAL_S)
        print(f"nominal gate time per promotion (3 rings): {nominal:.1f}s")
        print(
            f"baseline: 1 promotion alone            {baseline:6.2f}s  gate overhead median "
            f"{statistics.median(base_over):.3f}s max {max(base_over):.3f}s"
        )
        print(
            f"{runs} promotions at once                  {total:6.2f}s  gate overhead median "
            f"{statistics.median(over):.3f}s max {max(over):.3f}s  ({len(over)} gates)"
        )
        print(f"ratio (all at once / one alone)         {total / baseline:6.2f}")
        print(
            f"worker+client CPU during the {runs} runs: "
            f"{(cpu1.user - cpu0.user) + (cpu1.system - cpu0.system):.2f}s "
            f"(landscape processes incl. Temporal since start: {server_cpu:.2f}s)"
        )
    finally:
        for part in reversed(parts):
            part.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.promotion")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-promotion-") as tmp:
        asyncio.run(run(args.runs, Path(tmp)))


if __name__ == "__main__":
    main()
