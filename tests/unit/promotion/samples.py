"""A promotion definition tests start from (dev -> canary -> production)."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "apiVersion": "apeiro.dev/v1alpha1",
    "kind": "Promotion",
    "metadata": {"name": "edge-app"},
    "spec": {
        "artifact": {"component": "example.apeiro.dev/edge-app", "repository": "http://127.0.0.1:5000",
                     "requiredSignatures": ["site"]},
        "calendars": {"business": {"timeZone": "Europe/Berlin",
                                   "allow": [{"days": ["MO", "TU", "WE", "TH", "FR"], "start": "08:00",
                                              "end": "18:00"}],
                                   "deny": [{"from": "2026-12-20T00:00:00Z", "until": "2027-01-06T00:00:00Z",
                                             "note": "year-end freeze"}]}},
        "defaults": {"prometheus": "http://127.0.0.1:9090", "errorBackoff": "1s"},
        "rings": [
            {"name": "dev", "targets": [{"stage": "dev"}],
             "verifyGates": [{"type": "soak", "duration": "10m"}]},
            {"name": "canary", "targets": [{"stage": "canary-1"}, {"stage": "canary-2"}], "parallelism": 2,
             "flags": {"path": "/tmp/flags-canary.json",
                       "actions": [{"flag": "new-ui", "defaultVariant": "on",
                                    "variants": {"on": True, "off": False}}]},
             "verifyGates": [{"type": "prometheus", "name": "error-rate",
                              "query": 'sum(rate(http_requests_total{code=~"5.."}[1m]))',
                              "successCondition": "result < 0.05", "interval": "30s", "count": 3}]},
            {"name": "production", "targets": [{"stage": "prod"}],
             "entryGates": [{"type": "approval", "approvers": ["alice", "bob"], "quorum": 1},
                            {"type": "timeWindow", "calendar": "business"}],
             "verifyGates": [{"type": "upstreamVerified", "rings": ["canary"], "minSoak": "5m"}]},
        ],
    },
}


def sample(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["spec"].update(changes)
    return data


def error_rate_gate(interval: str, count: int, **more: Any) -> dict[str, Any]:
    """The metric gate the landscape's Prometheus answers (``sample_error_ratio``): below 5 % passes."""
    return {
        "type": "prometheus",
        "name": "error-rate",
        "query": "max(sample_error_ratio)",
        "successCondition": "result < 0.05",
        "interval": interval,
        "count": count,
        **more,
    }


def two_rings(name: str, kubeconfig: str, prometheus: str, flags: str, soak: str, interval: str) -> dict[str, Any]:
    """dev (one Stage, a soak) -> canary (two Stages, a flag, the error-rate gate) on real Stages and a
    real Prometheus; Stages are named ``<name>-dev``, ``<name>-c0``, ``<name>-c1``."""
    return {
        "metadata": {"name": name},
        "spec": {
            "artifact": {"component": "example.apeiro.dev/edge-app", "repository": "http://r"},
            "defaults": {"prometheus": prometheus, "errorBackoff": "2s"},
            "rings": [
                {
                    "name": "dev",
                    "targets": [{"stage": f"{name}-dev", "kubeconfig": kubeconfig}],
                    "verifyGates": [{"type": "soak", "duration": soak}],
                },
                {
                    "name": "canary",
                    "targets": [{"stage": f"{name}-c{i}", "kubeconfig": kubeconfig} for i in range(2)],
                    "parallelism": 2,
                    "flags": {
                        "path": flags,
                        "actions": [{"flag": "new-ui", "defaultVariant": "on", "variants": {"on": True, "off": False}}],
                    },
                    "verifyGates": [error_rate_gate(interval, 2)],
                },
            ],
        },
    }
