"""A local kcp with a provider workspace (our manifests applied), a bound consumer, a pipeline worker
on the time-skipping server, and the mesh controller, all on the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from definitions import queues
from landscape.kcp.front import make_kcp_app
from landscape.kcp.workspaces import Kcp
from landscape.process import free_port
from tests.support import pipeline
from workers.cli.mesh import manifests
from workers.mesh.bootstrap import apply_provider, binding, ensure, ensure_workspace
from workers.mesh.controller import Controller
from workers.worker import build_workers

PROVIDER = "root:providers:apeiro"
CONSUMER = "root:team-a"
RUNS = "/apis/orchestrator.apeiro.dev/v1alpha1/namespaces/default/pipelineruns"
DEMO_PIPELINE = pipeline(
    [
        {"name": "prepare", "uses": "core.echo", "with": {"values": {"site": "${{ inputs.site }}"}}},
        {"name": "gate", "uses": "core.approval", "needs": ["prepare"], "with": {"approvers": ["alice"]}},
        {"name": "finish", "uses": "core.echo", "needs": ["gate"], "with": {"values": {"n": "${{ inputs.count }}"}}},
    ],
    name="mesh-demo",
    inputs={"site": {"type": "string"}, "count": {"type": "integer", "default": 1}},
)
PLURALS = {
    "APIResourceSchema": "apiresourceschemas",
    "APIExport": "apiexports",
    "APIExportEndpointSlice": "apiexportendpointslices",
}


async def bootstrap(http: httpx.AsyncClient) -> None:
    """What a provider and a consumer do: workspaces, the provider's manifests, an APIBinding."""
    for path in ("root:providers", PROVIDER, CONSUMER):
        await ensure_workspace(http, path)
    skipped = await apply_provider(http, PROVIDER, manifests("kcp", PROVIDER, catalog=False))
    assert set(skipped) == {"ProviderMetadata", "ContentConfiguration", "ClusterRole"}  # not kcp's kinds
    assert await ensure(http, CONSUMER, binding(PROVIDER))


@dataclass
class Mesh:
    kcp: Kcp
    http: httpx.AsyncClient
    env: WorkflowEnvironment
    controller: Controller

    async def order(
        self, name: str, spec: dict[str, Any], plural: str = "pipelineruns", kind: str = "PipelineRun"
    ) -> dict[str, Any]:
        body = {
            "apiVersion": "orchestrator.apeiro.dev/v1alpha1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }
        r = await self.http.post(f"/clusters/{CONSUMER}{RUNS.replace('pipelineruns', plural)}", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def get(self, name: str, plural: str = "pipelineruns") -> dict[str, Any] | None:
        r = await self.http.get(f"/clusters/{CONSUMER}{RUNS.replace('pipelineruns', plural)}/{name}")
        if r.status_code >= 500:
            return {}  # an injected fault hit the test's own read: look again
        return None if r.status_code == 404 else dict(r.json())

    async def until(
        self, name: str, check: Any, timeout: float = 30.0, plural: str = "pipelineruns"
    ) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        obj = None
        while loop.time() < deadline:
            obj = await self.get(name, plural)
            if obj != {} and check(obj):
                return obj
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name} never got there; last seen: {obj}")


@contextlib.asynccontextmanager
async def serving_kcp() -> AsyncIterator[tuple[Kcp, str]]:
    """The local kcp served by uvicorn on a free port, on the test's event loop: the kcp and its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    kcp = Kcp(base_url=base)
    server = uvicorn.Server(uvicorn.Config(make_kcp_app(kcp), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.02)
    try:
        yield kcp, base
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def mesh(ts_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Mesh]:
    (tmp_path / "mesh-demo.yaml").write_text(json.dumps(DEMO_PIPELINE))
    monkeypatch.setenv("APEIRO_DEFINITIONS", str(tmp_path))
    workers = build_workers(ts_env.client, [queues.PIPELINE])
    async with serving_kcp() as (kcp, base), httpx.AsyncClient(base_url=base, timeout=30) as http, workers[0]:
        await bootstrap(http)
        controller = Controller(
            ts_env.client, http, f"{base}/clusters/{PROVIDER}", poll_interval=0.2, catalog_interval=0.3
        )
        running = asyncio.create_task(controller.run())
        try:
            yield Mesh(kcp, http, ts_env, controller)
        finally:
            running.cancel()
            with contextlib.suppress(BaseException):
                await running
