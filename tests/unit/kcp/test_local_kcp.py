"""The local kcp follows kcp's documented REST behaviour: workspaces, bindings, the virtual workspace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from landscape.kcp.front import parse_api_path
from landscape.kcp.workspaces import Kcp, logical_name
from tests.integration.mesh.conftest import CONSUMER, PROVIDER, bootstrap, serving_kcp

RUNS = "apis/orchestrator.apeiro.dev/v1alpha1/namespaces/default/pipelineruns"
EXPORT = "orchestrator.apeiro.dev"


@pytest.fixture
async def kcp() -> AsyncIterator[tuple[Kcp, httpx.AsyncClient]]:
    async with serving_kcp() as (k, base), httpx.AsyncClient(base_url=base, timeout=10) as http:
        await bootstrap(http)
        yield k, http


def run(name: str) -> dict:
    return {
        "apiVersion": "orchestrator.apeiro.dev/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name},
        "spec": {"pipeline": "p"},
    }


def test_api_paths() -> None:
    assert parse_api_path("apis/g/v1/namespaces/ns/things/x") == ("g", "v1", "ns", "things")
    assert parse_api_path("api/v1/events") == ("", "v1", None, "events")
    assert parse_api_path("apis/g/v1") == ("g", "v1", None, None)


async def test_workspaces_bindings_and_endpoint_slice(kcp: tuple[Kcp, httpx.AsyncClient]) -> None:
    k, http = kcp
    ws = (await http.get("/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/team-a")).json()
    assert ws["status"]["phase"] == "Ready"
    assert ws["spec"]["URL"].endswith(f"/clusters/{CONSUMER}") and ws["spec"]["cluster"] == logical_name(CONSUMER)
    binding = (await http.get(f"/clusters/{CONSUMER}/apis/apis.kcp.io/v1alpha2/apibindings/apeiro")).json()
    assert binding["status"]["phase"] == "Bound"
    assert {r["resource"] for r in binding["status"]["boundResources"]} >= {"pipelineruns", "pipelines"}
    assert binding["status"]["apiExportClusterName"] == logical_name(PROVIDER)
    eps = (await http.get(f"/clusters/{PROVIDER}/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/{EXPORT}")).json()
    assert eps["status"]["endpoints"] == [{"url": f"{k.base_url}/services/apiexport/{logical_name(PROVIDER)}/{EXPORT}"}]
    # the logical cluster name works wherever the path does
    r = await http.get(f"/clusters/{logical_name(CONSUMER)}/apis/apis.kcp.io/v1alpha2/apibindings/apeiro")
    assert r.status_code == 200
    # a binding to an export that does not exist stays Binding with a reason
    bad = {
        "apiVersion": "apis.kcp.io/v1alpha2",
        "kind": "APIBinding",
        "metadata": {"name": "nope"},
        "spec": {"reference": {"export": {"path": PROVIDER, "name": "nothing.example"}}},
    }
    await http.post("/clusters/root:providers/apis/apis.kcp.io/v1alpha2/apibindings", json=bad)
    got = (await http.get("/clusters/root:providers/apis/apis.kcp.io/v1alpha2/apibindings/nope")).json()
    assert got["status"]["phase"] == "Binding" and got["status"]["conditions"][0]["status"] == "False"
    # unbound workspaces do not serve the kind
    r = await http.post(f"/clusters/root:providers/{RUNS}", json=run("x"))
    assert r.status_code == 404


async def test_virtual_workspace_serves_only_bound_consumers_and_export_resources(
    kcp: tuple[Kcp, httpx.AsyncClient],
) -> None:
    _k, http = kcp
    assert (await http.post(f"/clusters/{CONSUMER}/{RUNS}", json=run("a"))).status_code == 201
    vw = f"/services/apiexport/{logical_name(PROVIDER)}/{EXPORT}/clusters"
    listed = (await http.get(f"{vw}/*/{RUNS.replace('namespaces/default/', '')}")).json()
    assert [(i["metadata"]["name"], i["metadata"]["annotations"]["kcp.io/cluster"]) for i in listed["items"]] == [
        ("a", logical_name(CONSUMER))
    ]
    assert (await http.get(f"{vw}/{logical_name(CONSUMER)}/{RUNS}/a")).status_code == 200
    assert (await http.get(f"{vw}/root/{RUNS}/a")).status_code == 403  # root has no binding
    # a resource outside the export: forbidden; the accepted events claim: allowed
    assert (await http.get(f"{vw}/{logical_name(CONSUMER)}/api/v1/namespaces/default/configmaps")).status_code == 403
    assert (await http.get(f"{vw}/{logical_name(CONSUMER)}/api/v1/namespaces/default/events")).status_code == 200
    # binding removed: the consumer disappears from the virtual workspace
    assert (await http.delete(f"/clusters/{CONSUMER}/apis/apis.kcp.io/v1alpha2/apibindings/apeiro")).status_code == 200
    assert (await http.get(f"{vw}/{logical_name(CONSUMER)}/{RUNS}/a")).status_code == 403
    assert (await http.get(f"{vw}/*/{RUNS.replace('namespaces/default/', '')}")).json()["items"] == []


async def test_wildcard_watch_merges_workspaces_and_ends_when_bindings_change(
    kcp: tuple[Kcp, httpx.AsyncClient],
) -> None:
    _k, http = kcp
    vw = f"/services/apiexport/{logical_name(PROVIDER)}/{EXPORT}/clusters/*/apis/orchestrator.apeiro.dev/v1alpha1/pipelineruns"
    rv = (await http.get(vw)).json()["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []

    async def watch() -> None:
        async with http.stream(
            "GET", vw, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "20"}
        ) as resp:
            async for line in resp.aiter_lines():
                ev = json.loads(line)
                seen.append((ev["type"], ev["object"]["metadata"]["name"]))

    task = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    await http.post(f"/clusters/{CONSUMER}/{RUNS}", json=run("w1"))
    # a second consumer binds: the open watch ends so the client re-lists and sees it
    await http.post(
        "/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces",
        json={"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace", "metadata": {"name": "team-b"}},
    )
    binding = {
        "apiVersion": "apis.kcp.io/v1alpha2",
        "kind": "APIBinding",
        "metadata": {"name": "apeiro"},
        "spec": {"reference": {"export": {"path": PROVIDER, "name": EXPORT}}},
    }
    await http.post("/clusters/root:team-b/apis/apis.kcp.io/v1alpha2/apibindings", json=binding)
    await asyncio.wait_for(task, 5)
    assert seen == [("ADDED", "w1")]
    await http.post(f"/clusters/root:team-b/{RUNS}", json=run("b1"))
    names = {i["metadata"]["name"] for i in (await http.get(vw)).json()["items"]}
    assert names == {"w1", "b1"}
    # resourceVersions are one sequence across workspaces, as kcp's are
    rvs = [int(i["metadata"]["resourceVersion"]) for i in (await http.get(vw)).json()["items"]]
    assert len(set(rvs)) == 2


async def test_wildcard_watch_from_a_compacted_version_is_410(kcp: tuple[Kcp, httpx.AsyncClient]) -> None:
    from workers.mesh.kube import Kube, KubeError

    _k, http = kcp
    await http.post(f"/clusters/{CONSUMER}/{RUNS}", json=run("old"))
    rv = (await http.get(f"/clusters/{CONSUMER}/{RUNS}/old")).json()["metadata"]["resourceVersion"]
    await http.post(f"/clusters/{CONSUMER}/{RUNS}", json=run("newer"))
    assert (await http.post(f"/clusters/{CONSUMER}/admin/compact")).status_code == 200
    vw = Kube(http, f"{_k.base_url}/services/apiexport/{logical_name(PROVIDER)}/{EXPORT}").at("*")
    with pytest.raises(KubeError) as info:
        async for _ in vw.watch("/apis/orchestrator.apeiro.dev/v1alpha1/pipelineruns", rv):
            pass
    assert info.value.code == 410
