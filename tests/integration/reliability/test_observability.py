"""Observability on the dev server: Prometheus metrics from the SDK runtime and per step type, and
OpenTelemetry spans through the pipeline workflow and its activities."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client, WorkflowFailureError

from definitions import queues
from landscape.process import free_port
from landscape.temporal import TemporalDevServer
from tests.chaos.common import start_worker
from tests.integration.reliability.conftest import child_env
from tests.support import pipeline
from workers.cli.pipeline import start_pipeline
from workers.config import TemporalSettings, connect, data_converter
from workers.worker import build_workers

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("reliability")]

SPANS = InMemorySpanExporter()


async def test_metrics_and_traces_cover_steps(own_temporal: TemporalDevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("APEIRO_METRICS_PORT", str(port))
    monkeypatch.setenv("APEIRO_TRACING", "console")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)  # tracing_interceptors() keeps a provider that is already set
    client = await connect(TemporalSettings(address=own_temporal.address))

    ok = pipeline(
        [
            {"name": "a", "uses": "core.echo", "with": {"values": {"x": 1}}},
            {"name": "b", "uses": "core.echo", "needs": ["a"], "with": {"values": {"y": 2}}},
        ],
        name="obs-ok",
    )
    bad = pipeline(
        [
            {
                "name": "call",
                "uses": "core.http",
                "retry": {"maxAttempts": 1},
                "with": {"url": f"http://127.0.0.1:{free_port()}/nothing-listens"},
            }
        ],
        name="obs-bad",
    )
    workers = build_workers(client, [queues.PIPELINE])
    async with workers[0]:
        await (await start_pipeline(client, ok, {})).result()
        with pytest.raises(WorkflowFailureError):
            await (await start_pipeline(client, bad, {})).result()

    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=10)).text
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]

    def value(prefix: str, *labels: str) -> float:
        found = [ln for ln in lines if ln.startswith(prefix) and all(lb in ln for lb in labels)]
        return sum(float(ln.rsplit(" ", 1)[1]) for ln in found)

    assert value("apeiro_step_started", 'step_type="core.echo"', 'kind="activity"') >= 2
    assert value("apeiro_step_failed", 'step_type="core.http"') >= 1
    assert value("apeiro_step_failed", 'step_type="core.echo"') == 0
    assert value("apeiro_step_duration", 'step_type="core.echo"') > 0  # histogram series exist
    assert value("apeiro_step_started", 'kind="workflow"') >= 2  # the pipeline runs themselves
    assert any(ln.startswith("temporal_") for ln in lines), "the SDK's own metrics are exported too"

    assert_prometheus_conventions(text)
    assert "apeiro_step_duration_seconds_bucket" in text and "apeiro_step_started_total" in text

    names = {s.name for s in SPANS.get_finished_spans()}
    assert "StartWorkflow:PipelineWorkflow" in names
    assert "RunWorkflow:PipelineWorkflow" in names
    assert "RunActivity:core.echo" in names and "RunActivity:core.http" in names
    # Activity spans are children of the workflow's trace.
    by_name = {s.name: s for s in SPANS.get_finished_spans()}
    start = by_name["StartWorkflow:PipelineWorkflow"]
    assert start.context is not None
    traces = {s.context.trace_id for s in SPANS.get_finished_spans() if s.context and s.name.startswith("RunActivity")}
    starts = {
        s.context.trace_id
        for s in SPANS.get_finished_spans()
        if s.context and s.name == "StartWorkflow:PipelineWorkflow"
    }
    assert traces <= starts


def assert_prometheus_conventions(text: str) -> None:
    """Counters end in _total; every duration/latency series is in seconds (_seconds)."""
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
    assert types, "no metric families scraped"
    counters = [n for n, k in types.items() if k == "counter"]
    assert counters and all(n.endswith("_total") for n in counters), counters
    timing = [n for n in types if any(w in n for w in ("latency", "duration", "_time"))]
    assert timing, "no duration metrics scraped"
    bad = [n for n in timing if not n.removesuffix("_total").endswith("_seconds")]
    assert not bad, f"durations not in seconds: {bad}"


def test_worker_process_serves_metrics_and_logs_json_with_ids(own_temporal: TemporalDevServer, tmp_path: Path) -> None:
    """`apeiro worker` as operators run it: /metrics on APEIRO_METRICS_PORT, JSON logs with ids."""
    port = free_port()
    log_path = tmp_path / "worker.log"
    env = child_env(own_temporal, APEIRO_METRICS_PORT=str(port), APEIRO_LOG_FORMAT="json")
    proc = start_worker(env, "pipeline", log_path)
    try:

        async def go() -> str:
            client = await Client.connect(own_temporal.address, data_converter=data_converter())
            data = pipeline([{"name": "a", "uses": "core.echo", "with": {"values": {"x": 1}}}], name="obs-proc")
            handle = await start_pipeline(client, data, {})
            await handle.result()
            return handle.id

        wf_id = asyncio.run(go())
        text = ""
        for _ in range(50):
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                if "apeiro_step_started" in text:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert 'step_type="core.echo"' in text and "temporal_" in text
        assert_prometheus_conventions(text)  # the worker process names metrics as Prometheus does
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    step_logs = [r for r in records if r.get("workflow_id") == wf_id and r.get("activity_type") == "core.echo"]
    assert step_logs, f"no JSON log line with the run's ids: {log_path.read_text()[-2000:]}"
    assert step_logs[0]["run_id"] and "finished" in step_logs[0]["message"]
