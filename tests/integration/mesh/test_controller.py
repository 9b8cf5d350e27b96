"""The mesh controller against the local kcp: orders placed through a binding run and report back."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.service import RPCError

from definitions.mesh import FINALIZER, kind_named
from tests.integration.mesh.conftest import CONSUMER, Mesh

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("time-skipping")]


def cond(obj: dict | None, type_: str) -> dict:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return {}


def phase(obj: dict | None) -> str:
    return str(((obj or {}).get("status") or {}).get("phase") or "")


async def approve(mesh: Mesh, name: str, approver: str) -> None:
    obj = await mesh.get(name)
    assert obj is not None
    obj["spec"].setdefault("approvals", []).append({"step": "gate", "approver": approver})
    r = await mesh.http.put(
        f"/clusters/{CONSUMER}/apis/orchestrator.apeiro.dev/v1alpha1/namespaces/default/pipelineruns/{name}", json=obj
    )
    assert r.status_code == 200, r.text


async def test_an_order_runs_to_succeeded_with_approvals_and_events(mesh: Mesh) -> None:
    created = await mesh.order("run-1", {"pipeline": "mesh-demo", "inputs": {"site": "edge-1"}})
    waiting = await mesh.until("run-1", lambda o: phase(o) == "AwaitingApproval")
    assert waiting is not None
    cluster = created["metadata"]["annotations"]["kcp.io/cluster"]
    assert waiting["status"]["workflowId"] == f"mesh-{cluster}-pipelinerun-{created['metadata']['uid']}"
    assert FINALIZER in waiting["metadata"]["finalizers"]
    assert cond(waiting, "AwaitingApproval")["status"] == "True"
    assert cond(waiting, "Ready")["status"] == "True"

    await approve(mesh, "run-1", "bob")  # not eligible: the validator's reason shows as a condition
    refused = await mesh.until("run-1", lambda o: cond(o, "ApprovalAccepted").get("status") == "False")
    assert "'bob' may not approve 'gate'" in cond(refused, "ApprovalAccepted")["message"]
    assert phase(refused) == "AwaitingApproval"

    await approve(mesh, "run-1", "alice")
    done = await mesh.until("run-1", lambda o: phase(o) == "Succeeded")
    assert done is not None
    assert cond(done, "Succeeded")["status"] == "True"
    assert cond(done, "ApprovalAccepted")["status"] == "True"
    assert {s["name"]: s["state"] for s in done["status"]["steps"]} == {
        "prepare": "succeeded",
        "gate": "succeeded",
        "finish": "succeeded",
    }

    r = await mesh.http.get(f"/clusters/{CONSUMER}/api/v1/namespaces/default/events")
    reasons = {(e["involvedObject"]["name"], e["metadata"]["name"]) for e in r.json()["items"]}
    assert ("run-1", "run-1.finish.succeeded") in reasons and ("run-1", "run-1.gate.waiting") in reasons

    # A second controller (a restart) joins the same run instead of starting another.
    before = await mesh.env.client.get_workflow_handle(done["status"]["workflowId"]).describe()
    mesh.controller.vw = mesh.controller.vw  # same virtual workspace
    from workers.mesh.controller import Controller

    again = Controller(mesh.env.client, mesh.http, mesh.controller.provider_url, poll_interval=0.2)
    again.vw = await again.virtual_workspace()
    await again.reconcile((cluster, "pipelineruns", "default", "run-1"))
    after = await mesh.env.client.get_workflow_handle(done["status"]["workflowId"]).describe()
    assert after.run_id == before.run_id


async def test_bad_orders_name_each_bad_field_and_start_nothing(mesh: Mesh) -> None:
    unknown = await mesh.order("bad-1", {"pipeline": "no-such-pipeline"})
    obj = await mesh.until("bad-1", lambda o: phase(o) == "Invalid")
    assert cond(obj, "Ready")["status"] == "False"
    assert cond(obj, "Ready")["message"].startswith("spec.pipeline: unknown pipeline 'no-such-pipeline'")
    await mesh.order("bad-2", {"pipeline": "mesh-demo", "inputs": {"count": "three", "sitee": "x"}})
    obj = await mesh.until("bad-2", lambda o: phase(o) == "Invalid")
    message = cond(obj, "Ready")["message"]
    assert "spec.inputs.sitee" in message and "spec.inputs.site" in message and "spec.inputs.count" in message
    # A lifecycle kind's schema (generated from the step's model) refuses a missing field at the API.
    body = {
        "apiVersion": "orchestrator.apeiro.dev/v1alpha1",
        "kind": "ClusterUpgrade",
        "metadata": {"name": "bad-3"},
        "spec": {},
    }
    r = await mesh.http.post(
        f"/clusters/{CONSUMER}/apis/orchestrator.apeiro.dev/v1alpha1/namespaces/default/clusterupgrades", json=body
    )
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "spec.name"
    cluster = unknown["metadata"]["annotations"]["kcp.io/cluster"]
    with pytest.raises(RPCError):
        await mesh.env.client.get_workflow_handle(f"mesh-{cluster}-pipelinerun-{unknown['metadata']['uid']}").describe()


async def test_delete_cancels_the_run_and_removes_the_finalizer(mesh: Mesh) -> None:
    await mesh.order("run-del", {"pipeline": "mesh-demo", "inputs": {"site": "edge-2"}})
    waiting = await mesh.until("run-del", lambda o: phase(o) == "AwaitingApproval")
    assert waiting is not None
    r = await mesh.http.delete(
        f"/clusters/{CONSUMER}/apis/orchestrator.apeiro.dev/v1alpha1/namespaces/default/pipelineruns/run-del"
    )
    assert r.status_code == 200
    await mesh.until("run-del", lambda o: o is None)
    desc = await mesh.env.client.get_workflow_handle(waiting["status"]["workflowId"]).describe()
    assert desc.status is not None and desc.status.name == "CANCELED"


async def test_binding_removed_while_running_keeps_the_run(mesh: Mesh, caplog: pytest.LogCaptureFixture) -> None:
    await mesh.order("run-b", {"pipeline": "mesh-demo", "inputs": {"site": "edge-3"}})
    waiting = await mesh.until("run-b", lambda o: phase(o) == "AwaitingApproval")
    assert waiting is not None
    r = await mesh.http.delete(f"/clusters/{CONSUMER}/apis/apis.kcp.io/v1alpha2/apibindings/apeiro")
    assert r.status_code == 200
    vw = mesh.controller.vw
    assert vw is not None
    r = await mesh.http.get(
        f"{vw.base}/clusters/{waiting['metadata']['annotations']['kcp.io/cluster']}/apis/orchestrator.apeiro.dev/v1alpha1/namespaces/default/pipelineruns/run-b"
    )
    assert r.status_code == 403
    key = (waiting["metadata"]["annotations"]["kcp.io/cluster"], "pipelineruns", "default", "run-b")
    assert await mesh.controller.reconcile(key) is None
    assert "no longer binds our APIExport: its runs continue" in caplog.text
    desc = await mesh.env.client.get_workflow_handle(waiting["status"]["workflowId"]).describe()
    assert desc.status is not None and desc.status.name == "RUNNING"
    await mesh.env.client.get_workflow_handle(waiting["status"]["workflowId"]).cancel()


async def test_conflicts_server_errors_and_cut_watches_are_survived(mesh: Mesh) -> None:
    """409 and 503 on status writes, 500 on reads, and a cut watch: the order still converges."""
    admin = f"/clusters/{CONSUMER}/admin/faults"
    for code, verbs, sub in ((409, ["update"], "status"), (503, ["update"], "status"), (500, ["get"], None)):
        rule = {"code": code, "count": 2, "verbs": verbs, "resource": "pipelineruns", "subresource": sub}
        assert (await mesh.http.post(admin, json=rule)).status_code == 200
    await mesh.order("run-f", {"pipeline": "mesh-demo", "inputs": {"site": "edge-4"}})
    await mesh.until("run-f", lambda o: phase(o) == "AwaitingApproval")
    assert (await mesh.http.post("/admin/kcp/cut-virtual-watches")).json()["cut"] >= 1
    await approve(mesh, "run-f", "alice")  # seen after the controller re-lists
    done = await mesh.until("run-f", lambda o: phase(o) == "Succeeded")
    assert done is not None and cond(done, "Succeeded")["status"] == "True"
    hits = (await mesh.http.get(admin)).json()["rules"]
    assert all(r["hits"] == r["count"] for r in hits), hits


async def test_killed_after_starting_before_writing_status_joins_the_run(mesh: Mesh) -> None:
    """A controller that died between starting the workflow and writing status leaves no duplicate."""
    from workers.mesh import orders
    from workers.mesh.controller import Controller

    # The order, and a "previous controller" that only got as far as starting its run.
    mesh.controller.kinds.pop("pipelineruns")  # keep the running controller away from pipelineruns
    created = await mesh.order("run-k", {"pipeline": "mesh-demo", "inputs": {"site": "edge-5"}})
    cluster = created["metadata"]["annotations"]["kcp.io/cluster"]
    kind = kind_named("PipelineRun")
    handle = mesh.env.client.get_workflow_handle(orders.workflow_id(cluster, kind, created["metadata"]["uid"]))
    plan = orders.plan(kind, created["spec"], mesh.controller.load, mesh.controller.validate)
    first = Controller(mesh.env.client, mesh.http, mesh.controller.provider_url, poll_interval=0.2)
    await first._start(handle, plan, cluster, kind)
    started = (await handle.describe()).run_id
    # A fresh controller takes over and reconciles until the order waits for approval.
    again = Controller(mesh.env.client, mesh.http, mesh.controller.provider_url, poll_interval=0.2)
    again.vw = await again.virtual_workspace()
    key = (cluster, "pipelineruns", "default", "run-k")
    for _ in range(20):
        await again.reconcile(key)
        obj = await mesh.get("run-k")
        if phase(obj) == "AwaitingApproval":
            break
    assert obj is not None and obj["status"]["runId"] == started
    assert (await handle.describe()).run_id == started
    await handle.cancel()


async def test_compacted_history_and_cut_watch_converge(mesh: Mesh) -> None:
    """History compacted and the watch cut mid-run: the controller re-lists and the order still finishes."""
    await mesh.order("run-e", {"pipeline": "mesh-demo", "inputs": {"site": "edge-6"}})
    await mesh.until("run-e", lambda o: phase(o) == "AwaitingApproval")
    assert (await mesh.http.post(f"/clusters/{CONSUMER}/admin/compact")).status_code == 200
    await mesh.http.post("/admin/kcp/cut-virtual-watches")
    await approve(mesh, "run-e", "alice")
    done = await mesh.until("run-e", lambda o: phase(o) == "Succeeded")
    assert done is not None


async def test_the_catalogue_is_published_read_only_into_bound_workspaces(mesh: Mesh) -> None:
    url = f"/clusters/{CONSUMER}/apis/orchestrator.apeiro.dev/v1alpha1/pipelines"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    names: set[str] = set()
    while loop.time() < deadline and "mesh-demo" not in names:
        names = {p["metadata"]["name"] for p in (await mesh.http.get(url)).json().get("items", [])}
        await asyncio.sleep(0.1)
    assert {"mesh-demo", "cluster-lifecycle"} <= names
    demo = (await mesh.http.get(f"{url}/mesh-demo")).json()
    assert demo["spec"]["steps"] == ["prepare", "gate", "finish"] and demo["spec"]["inputs"]["site"] == {
        "type": "string"
    }
    demo["spec"]["steps"] = ["tampered"]
    assert (await mesh.http.put(f"{url}/mesh-demo", json=demo)).status_code == 200
    deadline = loop.time() + 20
    while loop.time() < deadline:
        if (await mesh.http.get(f"{url}/mesh-demo")).json()["spec"]["steps"] != ["tampered"]:
            break
        await asyncio.sleep(0.1)
    assert (await mesh.http.get(f"{url}/mesh-demo")).json()["spec"]["steps"] == ["prepare", "gate", "finish"]
