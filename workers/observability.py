"""Process-wide observability, configured from the environment:

- ``APEIRO_METRICS_PORT`` (and ``APEIRO_METRICS_HOST``, default 127.0.0.1): a Prometheus endpoint
  ``/metrics`` served by the Temporal SDK runtime, named by Prometheus conventions (counters
  ``*_total``, durations ``*_seconds``): the SDK's own worker, poller, task-slot and latency metrics
  plus ours (:mod:`workers.interceptors`, per step type).
- ``APEIRO_TRACING`` = ``console`` | ``otlp``: OpenTelemetry spans through workflows and activities
  with ``temporalio.contrib.opentelemetry.TracingInterceptor`` (extra ``otel``; ``otlp`` also needs
  ``opentelemetry-exporter-otlp`` and the usual ``OTEL_EXPORTER_OTLP_*`` variables).
- ``APEIRO_LOG_FORMAT=json``: one JSON object per log line, carrying ``workflow_id``, ``run_id``,
  ``activity_type`` etc. whenever the line was logged inside a workflow or an activity.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from temporalio import activity
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

ENV_METRICS_PORT = "APEIRO_METRICS_PORT"
ENV_METRICS_HOST = "APEIRO_METRICS_HOST"
ENV_TRACING = "APEIRO_TRACING"
ENV_LOG_FORMAT = "APEIRO_LOG_FORMAT"

_runtime: Runtime | None = None
_runtime_key: str | None = None


class ObservabilityError(Exception):
    """Observability is configured wrongly; the message names the variable."""


def runtime_from_env() -> Runtime | None:
    """One Runtime per process with a Prometheus endpoint, or None (the SDK default runtime)."""
    global _runtime, _runtime_key
    port = os.environ.get(ENV_METRICS_PORT, "").strip()
    if not port:
        return None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ObservabilityError(f"{ENV_METRICS_PORT}={port!r} is not a TCP port")
    address = f"{os.environ.get(ENV_METRICS_HOST, '127.0.0.1').strip()}:{port}"
    if _runtime is None or _runtime_key != address:
        _runtime = Runtime(telemetry=TelemetryConfig(metrics=prometheus_config(address)))
        _runtime_key = address
    return _runtime


def prometheus_config(address: str) -> PrometheusConfig:
    """Prometheus naming conventions (https://prometheus.io/docs/practices/naming/): counters end in
    ``_total``, durations are seconds and end in ``_seconds``, other units are suffixed too, so
    dashboards and alert rules written for any Prometheus exporter read ours unchanged."""
    return PrometheusConfig(
        bind_address=address,
        counters_total_suffix=True,
        durations_as_seconds=True,
        unit_suffix=True,
    )


def tracing_interceptors() -> list[Any]:
    """[TracingInterceptor] when APEIRO_TRACING is set (client and worker both use it), else []."""
    mode = os.environ.get(ENV_TRACING, "").strip().lower()
    if not mode or mode == "off":
        return []
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError:
        raise ObservabilityError(
            f"{ENV_TRACING}={mode} needs the OpenTelemetry SDK: pip install 'apeiro-orchestrator[otel]'"
        ) from None
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        exporter: SpanExporter
        if mode == "console":
            exporter = ConsoleSpanExporter()
        elif mode == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                raise ObservabilityError(
                    f"{ENV_TRACING}=otlp needs opentelemetry-exporter-otlp-proto-http installed"
                ) from None
            exporter = OTLPSpanExporter()
        else:
            raise ObservabilityError(f"{ENV_TRACING} must be console, otlp or off, not {mode!r}")
        provider = TracerProvider(resource=Resource.create({"service.name": "apeiro-worker"}))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    return [TracingInterceptor()]


# --- structured logs -----------------------------------------------------------------------------

_TEMPORAL_FIELDS = (
    "workflow_id",
    "workflow_run_id",
    "run_id",
    "workflow_type",
    "activity_id",
    "activity_type",
    "attempt",
    "task_queue",
    "namespace",
)


class TemporalContextFilter(logging.Filter):
    """Adds the ids of the running activity to records logged with a plain logger inside it.

    (``activity.logger`` and ``workflow.logger`` already attach ``temporal_activity`` /
    ``temporal_workflow``; this covers library code that logs through ``logging.getLogger``.)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "temporal_activity") and activity.in_activity():
            info = activity.info()
            record.temporal_activity = {
                "workflow_id": info.workflow_id,
                "workflow_run_id": info.workflow_run_id,
                "workflow_type": info.workflow_type,
                "activity_id": info.activity_id,
                "activity_type": info.activity_type,
                "attempt": info.attempt,
                "task_queue": info.task_queue,
            }
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; Temporal ids as top-level fields so log search can join on them."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for attr in ("temporal_workflow", "temporal_activity"):
            ctx = getattr(record, attr, None)
            if isinstance(ctx, dict):
                for key in _TEMPORAL_FIELDS:
                    if key in ctx:
                        out["run_id" if key == "workflow_run_id" else key] = ctx[key]
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: int = logging.INFO) -> None:
    """Install the JSON formatter when APEIRO_LOG_FORMAT=json (plain text otherwise, as before)."""
    root = logging.getLogger()
    if os.environ.get(ENV_LOG_FORMAT, "").strip().lower() != "json":
        return
    import time

    JsonFormatter.converter = time.gmtime
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TemporalContextFilter())
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
