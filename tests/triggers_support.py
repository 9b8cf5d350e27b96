"""Shared by the trigger tests: a small gateway config, a test pipeline, request builders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from definitions.library import EXAMPLES, PipelineLibrary
from definitions.triggers import GatewayConfig, parse_gateway_config
from landscape.process import free_port
from tests.support import pipeline
from triggers.app import create_app
from triggers.auth import sign
from triggers.dispatch import LibraryCache, Planner
from triggers.temporal import TemporalConnection
from workers.config import TemporalSettings

HOOK_KEY = "s3cret-old"
HOOK_KEY_NEW = "s3cret-new"
TOKEN = "tok-123"
BOOT_QUEUE = "test-boot"
ENV = {"T_HOOK_KEY": HOOK_KEY, "T_HOOK_KEY_NEW": HOOK_KEY_NEW, "T_TOKEN": TOKEN}

ECHO_PIPELINE = pipeline(
    [{"name": "echo", "uses": "core.echo",
      "with": {"values": {"message": "${{ inputs.message }}", "count": "${{ inputs.count }}"}}}],
    name="hook-echo",
    inputs={"message": {"type": "string"}, "count": {"type": "integer", "default": 1}},
    outputs={"message": "steps.echo.outputs.message"},
)


#: The smallest gateway file `apeiro webhook serve` accepts: one HMAC route to pipelines (key in T_HOOK_KEY).
MINIMAL_GATEWAY_YAML = """
routes:
  - name: pipelines
    source: pipeline
    auth: {type: hmac, secrets: ["env:T_HOOK_KEY"]}
"""


def write_minimal_gateway(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``MINIMAL_GATEWAY_YAML`` as ``directory/gw.yaml``, its key in this process's environment."""
    monkeypatch.setenv("T_HOOK_KEY", HOOK_KEY)
    path = directory / "gw.yaml"
    path.write_text(MINIMAL_GATEWAY_YAML)
    return path


def write_definitions(directory: Path) -> Path:
    (directory / "hook-echo.yaml").write_text(json.dumps(ECHO_PIPELINE))
    return directory


def library(directory: Path) -> PipelineLibrary:
    return PipelineLibrary([directory, EXAMPLES])


def gateway_app(
    directory: Path,
    monkeypatch: pytest.MonkeyPatch,
    temporal: TemporalConnection | None = None,
    config: GatewayConfig | None = None,
    **kw: Any,
) -> FastAPI:
    """The gateway over the test pipeline (written to ``directory``) with the test keys in the
    environment; Temporal is ``temporal``, or by default an address where nothing listens."""
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    if temporal is None:
        dead = TemporalSettings(address=f"127.0.0.1:{free_port()}")
        temporal = TemporalConnection(lambda: dead)
    planner = Planner(LibraryCache(library(write_definitions(directory))))
    return create_app(config or gateway_config(), temporal=temporal, planner=planner, **kw)


def asgi_client(app: FastAPI, **kw: Any) -> httpx.AsyncClient:
    """An HTTP client that calls ``app`` in-process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw", **kw)


def gateway_config(**overrides: Any) -> GatewayConfig:
    hmac_auth = {"type": "hmac", "secrets": ["env:T_HOOK_KEY", "env:T_HOOK_KEY_NEW"], "toleranceSeconds": 300}
    bearer = {"type": "bearer", "tokens": ["env:T_TOKEN"]}
    data: dict[str, Any] = {
        "maxBodyBytes": 4096,
        "uiUrl": "http://ui.example:8233",
        "routes": [
            {"name": "pipelines", "source": "pipeline", "auth": hmac_auth},
            {
                "name": "registry",
                "source": "docker-registry",
                "auth": bearer,
                "rules": [
                    {
                        "name": "transport",
                        "when": 'event.action == "push" && event.component != "" && event.tag != ""',
                        "target": {
                            "step": "component.transport",
                            "with": {
                                "source": {"url": '${{ event.registry + "/" + event.prefix }}'},
                                "target": {"url": "http://127.0.0.1:9/ocm"},
                                "components": [{"name": "${{ event.component }}", "version": "${{ event.version }}"}],
                            },
                        },
                    }
                ],
            },
            {
                "name": "alerts",
                "source": "alertmanager",
                "auth": bearer,
                "rules": [
                    {
                        "name": "echo",
                        "when": 'event.status == "firing" && event.labels.alertname == "HookTest"',
                        "target": {"pipeline": "hook-echo", "inputs": {"message": "${{ event.labels.instance }}"}},
                    },
                    {
                        "name": "shoot",
                        "when": 'event.status == "firing" && event.labels.alertname == "ShootReconcileFailed"',
                        "target": {"pipeline": "shoot-remediation", "inputs": {"shoot": "${{ event.labels.shoot }}"}},
                    },
                ],
            },
            {
                "name": "releases",
                "source": "cloudevents",
                "auth": hmac_auth,
                "rules": [
                    {
                        "name": "promote",
                        "when": 'event.type == "dev.apeiro.release.published"',
                        "target": {
                            "pipeline": "hook-echo",
                            "inputs": {"message": '${{ event.data.component + "@" + event.data.version }}'},
                        },
                    }
                ],
            },
            {
                "name": "boot",
                "source": "boot-callback",
                "auth": hmac_auth,
                "rules": [
                    {
                        "name": "booted",
                        "target": {
                            "signal": "os_booted",
                            "workflowId": "boot-wait-${{ event.server }}",
                            "args": "${{ event }}",
                            "start": {
                                "workflow": "BootWaitWorkflow",
                                "taskQueue": BOOT_QUEUE,
                                "args": "${{ event.server }}",
                            },
                        },
                    }
                ],
            },
            {
                "name": "boot-plain",
                "source": "boot-callback",
                "auth": hmac_auth,
                "rules": [
                    {"name": "booted", "target": {"signal": "os_booted", "workflowId": "boot-wait-${{ event.server }}"}}
                ],
            },
            {
                "name": "open",
                "source": "pipeline",
                "path": "/hooks/open/{pipeline}",
                "auth": {"type": "none"},
                "maxBodyBytes": 256,
            },
        ],
    }
    data.update(overrides)
    return parse_gateway_config(data)


def signed(
    body: dict[str, Any] | bytes,
    key: str = HOOK_KEY,
    timestamp: int | None = None,
    content_type: str = "application/json",
    **headers: str,
) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return {
        "content": raw,
        "headers": {"content-type": content_type, "x-apeiro-signature": sign(raw, key, timestamp), **headers},
    }


def bearer(body: dict[str, Any] | bytes, token: str = TOKEN, content_type: str = "application/json") -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return {"content": raw, "headers": {"content-type": content_type, "authorization": f"Bearer {token}"}}


def registry_envelope(
    event_id: str,
    repository: str = "ocm/component-descriptors/example.apeiro.dev/edge-app",
    tag: str = "1.0.0",
    action: str = "push",
) -> dict[str, Any]:
    return {
        "events": [
            {
                "id": event_id,
                "timestamp": "2026-11-21T10:00:00Z",
                "action": action,
                "target": {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "size": 512,
                    "digest": "sha256:" + "a" * 64,
                    "repository": repository,
                    "tag": tag,
                    "url": f"http://127.0.0.1:5000/v2/{repository}/manifests/sha256:{'a' * 64}",
                },
                "request": {"id": "r1", "addr": "127.0.0.1:1234", "host": "127.0.0.1:5000", "method": "PUT"},
                "actor": {"name": "ci"},
                "source": {"addr": "registry:5000", "instanceID": "i1"},
            }
        ]
    }


def alert_payload(alertname: str, fingerprint: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="' + alertname + '"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "apeiro",
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname},
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": alertname, **labels},
                "annotations": {},
                "startsAt": "2026-11-21T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom:9090/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


def cloud_event(
    event_id: str, component: str = "example.apeiro.dev/edge-app", version: str = "1.2.0", **extra: Any
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "https://ci.example/pipelines/7",
        "type": "dev.apeiro.release.published",
        "datacontenttype": "application/json",
        "data": {"component": component, "version": version},
        **extra,
    }
