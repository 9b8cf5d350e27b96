"""Prometheus metrics of the gateway (one registry per app, so tests can run several apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apeiro_webhook_requests_total",
            "Webhook deliveries by route, outcome and status",
            ["route", "outcome", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "apeiro_webhook_request_seconds",
            "Time to answer a delivery",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.admission_limit = Gauge(
            "apeiro_webhook_admission_limit",
            "Deliveries admitted at once now (lowered while deliveries take longer than the target latency)",
            registry=self.registry,
        )
        self.workflows = Counter(
            "apeiro_webhook_workflow_actions_total",
            "Workflow starts/signals by route and action (started, existing, signalled...)",
            ["route", "action"],
            registry=self.registry,
        )
        self.events = Counter(
            "apeiro_webhook_events_total",
            "Events parsed by route and result (matched, ignored)",
            ["route", "result"],
            registry=self.registry,
        )
