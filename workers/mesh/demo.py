"""`apeiro mesh demo`: order a PipelineRun from a consumer workspace through a binding, watch it succeed.

Fast on purpose (a Temporal dev server and the local kcp, no other landscape parts): the provider
applies its generated manifests, a consumer workspace binds the export, creates a `PipelineRun`, and
approves its gate by adding to `spec.approvals` (as a consumer would, with kubectl); the controller
runs it and writes status and Events back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from definitions import queues
from workers.config import TemporalSettings, connect
from workers.landscape_loader import load_landscape
from workers.mesh.bootstrap import apply_provider, binding, ensure, ensure_workspace
from workers.mesh.controller import Controller
from workers.worker import build_workers

PROVIDER = "root:providers:apeiro"
CONSUMER = "root:team-edge"
RUNS = "/apis/orchestrator.apeiro.dev/v1alpha1/namespaces/default/pipelineruns"
APPROVER = "site-lead"
PIPELINE = """
apiVersion: apeiro.dev/v1alpha1
kind: Pipeline
metadata: {name: mesh-hello}
spec:
  description: A short pipeline for the Platform Mesh demo (echo, approval, echo).
  inputs:
    site: {type: string, default: edge-demo-1}
  steps:
    - {name: plan, uses: core.echo, with: {values: {site: "${{ inputs.site }}"}}}
    - {name: approve, uses: core.approval, needs: [plan], with: {approvers: [site-lead]}}
    - {name: apply, uses: core.echo, needs: [approve], with: {values: {done: true}}}
"""


def run_mesh_demo(state_dir: Path) -> int:
    for name in ("temporalio.activity", "temporalio.workflow", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    base = load_landscape("landscape")
    temporal = load_landscape("temporal")
    kcp_part = load_landscape("kcp.part")
    if state_dir.exists():
        shutil.rmtree(state_dir)
    landscape = base.Landscape([temporal.TemporalDevServer(headless=True), kcp_part.KcpServer()], state_dir=state_dir)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as defs, landscape.running():
        Path(defs, "mesh-hello.yaml").write_text(PIPELINE)
        os.environ["APEIRO_DEFINITIONS"] = os.pathsep.join(p for p in (defs, os.environ.get("APEIRO_DEFINITIONS")) if p)
        os.environ.update(landscape.env())
        print(f"Temporal and the local kcp up in {time.monotonic() - started:.1f}s")
        code = asyncio.run(_run(landscape.part("kcp").endpoints["url"]))
    print("landscape stopped.")
    return code


async def _run(kcp_url: str) -> int:
    from workers.cli.mesh import manifests

    client = await connect(TemporalSettings.from_env())
    (worker,) = build_workers(client, [queues.PIPELINE])
    async with worker, httpx.AsyncClient(base_url=kcp_url, timeout=30) as http:
        for path in ("root:providers", PROVIDER, CONSUMER):
            await ensure_workspace(http, path)
        skipped = await apply_provider(http, PROVIDER, manifests("kcp", PROVIDER, catalog=False))
        print(f"provider {PROVIDER}: APIResourceSchemas, APIExport and endpoint slice applied")
        if skipped:
            print(f"  (not served by the local kcp, Platform Mesh only: {', '.join(sorted(set(skipped)))})")
        await ensure(http, CONSUMER, binding(PROVIDER))
        print(f"consumer {CONSUMER}: APIBinding to orchestrator.apeiro.dev")
        controller = Controller(client, http, f"{kcp_url}/clusters/{PROVIDER}", poll_interval=0.3)
        task = asyncio.create_task(controller.run())
        try:
            return await _order(http)
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def _order(http: httpx.AsyncClient) -> int:
    body = {
        "apiVersion": "orchestrator.apeiro.dev/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": "hello-1"},
        "spec": {"pipeline": "mesh-hello", "inputs": {"site": "edge-demo-1"}},
    }
    r = await http.post(f"/clusters/{CONSUMER}{RUNS}", json=body)
    r.raise_for_status()
    print(f"\nordered PipelineRun hello-1 in {CONSUMER}")
    url = f"/clusters/{CONSUMER}{RUNS}/hello-1"
    last = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        obj: dict[str, Any] = (await http.get(url)).json()
        status = obj.get("status") or {}
        line = f"  phase {status.get('phase', '-'):<17} " + " ".join(
            f"{s['name']}={s['state']}" for s in status.get("steps") or []
        )
        if line != last:
            print(line, flush=True)
            last = line
        if status.get("phase") == "AwaitingApproval" and not obj["spec"].get("approvals"):
            obj["spec"]["approvals"] = [{"step": "approve", "approver": APPROVER, "comment": "demo"}]
            (await http.put(url, json=obj)).raise_for_status()
            print(f"  → {APPROVER} approved by adding spec.approvals[0]", flush=True)
        if status.get("phase") in ("Succeeded", "Failed", "Cancelled", "Invalid"):
            events = (await http.get(f"/clusters/{CONSUMER}/api/v1/namespaces/default/events")).json()["items"]
            print(f"\nstatus.workflowId: {status.get('workflowId')}")
            print(f"conditions: {', '.join(c['type'] + '=' + c['status'] for c in status.get('conditions') or [])}")
            print(f"events in {CONSUMER}: {len(events)} (" + ", ".join(e["reason"] for e in events) + ")")
            return 0 if status["phase"] == "Succeeded" else 1
        await asyncio.sleep(0.2)
    print("the order did not finish within 60 s")
    return 1
