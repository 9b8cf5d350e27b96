"""Apply the provider's manifests and bind a consumer, over kcp's REST API (demo, tests, first setup).

A real provider applies `apeiro mesh manifests` with kubectl (docs/platform-mesh.md); this does the
same for a kcp reachable by URL, creating what is missing and leaving what exists (APIResourceSchemas
are immutable in kcp: a changed schema comes with a new name, never an update).
"""

from __future__ import annotations

from typing import Any

import httpx

from definitions.mesh import EXPORT_NAME

#: kind -> plural for the manifests applied through kcp's API (cluster-scoped in the workspace).
PLURALS = {
    "APIResourceSchema": "apiresourceschemas",
    "APIExport": "apiexports",
    "APIExportEndpointSlice": "apiexportendpointslices",
    "ProviderMetadata": "providermetadata",
    "ContentConfiguration": "contentconfigurations",
    "ClusterRole": "clusterroles",
    "Workspace": "workspaces",
    "APIBinding": "apibindings",
}


async def ensure(http: httpx.AsyncClient, workspace: str, doc: dict[str, Any]) -> bool:
    """Create `doc` in `workspace` unless it exists; False when the server does not serve its kind."""
    api = doc["apiVersion"]
    base = f"/clusters/{workspace}/apis/{api}" if "/" in api else f"/clusters/{workspace}/api/{api}"
    url = f"{base}/{PLURALS[doc['kind']]}"
    r = await http.post(url, json=doc)
    if r.status_code in (201, 409):
        return True
    if r.status_code == 404:
        return False  # e.g. ui.platform-mesh.io exists only where Platform Mesh runs
    what = f"{doc['kind']} {doc['metadata']['name']} in {workspace}"
    raise RuntimeError(f"creating {what}: {r.status_code} {r.text[:300]}")


async def ensure_workspace(http: httpx.AsyncClient, path: str) -> None:
    parent, _, name = path.rpartition(":")
    doc = {"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace", "metadata": {"name": name}}
    await ensure(http, parent, doc)


async def apply_provider(http: httpx.AsyncClient, provider: str, docs: list[dict[str, Any]]) -> list[str]:
    """Apply the manifests into the provider workspace; returns the kinds this server did not serve."""
    skipped = []
    for doc in docs:
        if doc["kind"] in PLURALS and not await ensure(http, provider, doc):
            skipped.append(doc["kind"])
    return skipped


def binding(provider: str, name: str = "apeiro") -> dict[str, Any]:
    """The APIBinding a consumer creates, accepting the claim on events (step transitions)."""
    return {
        "apiVersion": "apis.kcp.io/v1alpha2",
        "kind": "APIBinding",
        "metadata": {"name": name},
        "spec": {
            "reference": {"export": {"path": provider, "name": EXPORT_NAME}},
            "permissionClaims": [
                {"group": "", "resource": "events", "verbs": ["*"], "state": "Accepted", "selector": {"matchAll": True}}
            ],
        },
    }
