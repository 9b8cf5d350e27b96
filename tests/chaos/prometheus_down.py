"""Fault campaign, "Prometheus down": a promotion whose metric gate runs while Prometheus is stopped.

    python -m tests.chaos.faults --lifecycle prometheus --runs 4 [--seed 7]

Each run promotes a fresh pipeline (one ring, one Konfidence Stage on the landscape API server, a
Prometheus gate over the sample workload) on `apeiro worker --queues konfidence` processes. As soon
as the ring is verifying, the real Prometheus process is stopped for a random 3-8 s, then started
again on the same port and TSDB.

Expected, and counted: while Prometheus is down the gate reports **Error** (queries that could not
run), never Failed; nothing is rolled back (``rollbackOnError`` is off by default, so Error retries
with backoff); once Prometheus answers again the gate passes and the promotion succeeds. A run that
rolls back, fails a gate or pauses for a person is a wrong outcome; one without a result within the
deadline hangs.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowFailureError

from definitions import queues
from definitions.promotion_runs import GateOutcome, PromotionOutcome, PromotionRequest, RingState, RunState
from landscape.kubeapi.part import KubeApiServer
from landscape.process import ManagedProcess
from landscape.prometheus import Prometheus
from landscape.temporal import TemporalDevServer
from tests.chaos.common import OutcomeTally, emit
from tests.chaos.harness import REPO, campaign_workers
from tests.unit.promotion.samples import error_rate_gate

REPOSITORY = "http://r"
COMPONENT = "example.apeiro.dev/edge-app"


@dataclass
class PromDownRun:
    pipeline: str
    down_seconds: float
    outcome: str  # recovered | wrong-outcome | hung
    seconds: float
    gate_error_seen: bool = False
    gate_failed: bool = False
    rolled_back: bool = False
    deploys: int = 0
    message: str = ""


@dataclass
class PromDownReport(OutcomeTally):
    gate_error_seen: int = 0
    gate_failed: int = 0
    rolled_back: int = 0
    recovered: int = 0

    def count(self, rec: PromDownRun) -> None:
        self.count_outcome(rec)
        self.gate_error_seen += rec.gate_error_seen
        self.gate_failed += rec.gate_failed
        self.rolled_back += rec.rolled_back
        self.recovered += rec.outcome == "recovered"

    def summary(self) -> str:
        return (
            f"prometheus-down campaign: runs={self.runs} gate-error-seen={self.gate_error_seen} "
            f"gate-failed={self.gate_failed} rolled-back={self.rolled_back} recovered={self.recovered} "
            f"wrong-outcome={self.wrong} hung={self.hung}"
        )


@dataclass
class PromLandscape:
    temporal: TemporalDevServer
    stages: KubeApiServer
    prometheus: Prometheus

    @property
    def prometheus_process(self) -> ManagedProcess:
        return next(p for p in self.prometheus.processes if p.name == "prometheus")

    def stop_prometheus(self) -> None:
        self.prometheus_process.stop()

    def start_prometheus(self) -> None:
        url = self.prometheus.endpoints["url"]
        self.prometheus_process.start(lambda: httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200, timeout=30)

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.temporal.env(), "PYTHONPATH": str(REPO)}


@contextmanager
def prometheus_landscape(state: Path) -> Iterator[PromLandscape]:
    temporal = TemporalDevServer(headless=True, persistent=True)
    stages = KubeApiServer(
        plugins=("landscape.kubeapi.extra_kinds", "landscape.konfidence"),
        settings={"konfidence.deploySeconds": "0.1"},
        seed_garden=False,
    )
    prometheus = Prometheus(scrape_interval="1s")
    try:
        temporal.start(state / "temporal")
        stages.start(state / "stages")
        prometheus.start(state / "prometheus")
        yield PromLandscape(temporal, stages, prometheus)
    finally:
        prometheus.stop()
        stages.stop()
        temporal.stop()


def promotion(land: PromLandscape, name: str) -> dict[str, Any]:
    """One ring, one Stage, a metric gate that needs 6 good samples a second apart; a query that
    cannot run twice in a row is Error, retried with backoff (1 s, doubling) up to 6 times."""
    return {
        "metadata": {"name": name},
        "spec": {
            "artifact": {"component": COMPONENT, "repository": REPOSITORY},
            "defaults": {"prometheus": land.prometheus.endpoints["url"], "errorBackoff": "1s", "errorRetries": 6},
            "rings": [
                {
                    "name": "canary",
                    "targets": [{"stage": f"{name}-c", "kubeconfig": land.stages.endpoints["kubeconfig"]}],
                    "verifyGates": [error_rate_gate("1s", 6, consecutiveErrorLimit=2, noData="error")],
                }
            ],
        },
    }


def _gates(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [g for ring in status.get("rings", []) for g in ring.get("gates", [])]


def stage_history(land: PromLandscape, stage: str) -> list[str]:
    url = f"{land.stages.url}/apis/konfidence.cloud/v1alpha1/namespaces/default/stages/{stage}"
    resp = httpx.get(url, timeout=5)
    resp.raise_for_status()
    history: list[str] = (resp.json().get("status") or {}).get("vectorHistory") or []
    return history


async def run_one(land: PromLandscape, client: Client, rng: random.Random, deadline: float) -> PromDownRun:
    name = f"pd-{uuid.uuid4().hex[:8]}"
    down = round(rng.uniform(3.0, 8.0), 1)
    rec = PromDownRun(name, down, "hung", 0.0)
    t0 = time.monotonic()
    handle = await client.start_workflow(
        "PromotionWorkflow",
        PromotionRequest(promotion=promotion(land, name), version="1.0.0", requested_by="chaos"),
        id=f"promotion-{name}-1.0.0",
        task_queue=queues.KONFIDENCE,
    )

    async def status() -> dict[str, Any]:
        value: Any = await handle.query("status")
        return value if isinstance(value, dict) else value.model_dump(mode="json")

    def observe(st: dict[str, Any]) -> None:
        for gate in _gates(st):
            rec.gate_error_seen |= gate.get("outcome") == GateOutcome.ERROR.value
            rec.gate_failed |= gate.get("outcome") == GateOutcome.FAILED.value

    try:
        while time.monotonic() - t0 < deadline:  # wait for the ring to verify, then pull the plug
            st = await status()
            if any(r.get("state") == RingState.VERIFYING.value for r in st.get("rings", [])):
                break
            await asyncio.sleep(0.1)
        await asyncio.to_thread(land.stop_prometheus)
        try:
            until = time.monotonic() + down
            while time.monotonic() < until:
                observe(await status())
                await asyncio.sleep(0.25)
        finally:
            await asyncio.to_thread(land.start_prometheus)
        remaining = max(1.0, deadline - (time.monotonic() - t0))
        try:
            raw = await asyncio.wait_for(handle.result(), remaining)
        except TimeoutError:
            observe(await status())
            await handle.terminate("prometheus-down campaign: hung")
            rec.message = f"no result after {deadline:.0f}s"
            return rec
        except WorkflowFailureError as exc:
            rec.outcome, rec.message = "wrong-outcome", str(exc.cause or exc)[:300]
            return rec
        out = PromotionOutcome.model_validate(raw)
        for att in [*out.audit, *out.status.rings]:
            rec.rolled_back |= att.state is RingState.ROLLED_BACK
            for gate in att.gates:
                rec.gate_error_seen |= any(m.outcome == "Error" for m in gate.measurements)
                rec.gate_failed |= gate.outcome is GateOutcome.FAILED
        rec.deploys = len(stage_history(land, f"{name}-c"))
        good = out.status.state is RunState.SUCCEEDED and not rec.rolled_back and not rec.gate_failed
        good = good and rec.gate_error_seen and rec.deploys == 1
        rec.outcome = "recovered" if good else "wrong-outcome"
        rec.message = out.status.message[:300]
        return rec
    finally:
        rec.seconds = round(time.monotonic() - t0, 1)


async def prometheus_down_campaign(
    runs: int, seed: int, state: Path, deadline: float = 120, verbose: bool = True
) -> PromDownReport:
    rng = random.Random(seed)
    report = PromDownReport()
    with prometheus_landscape(state) as land:
        land.prometheus.set_error_rate(0.0)
        async with campaign_workers(land.temporal.address, land.env(), queues.KONFIDENCE, state) as (_, client, _):
            for _ in range(runs):
                rec = await run_one(land, client, rng, deadline)
                report.count(rec)
                emit(rec, verbose)
    return report
