"""`kubernetes_asyncio`, unchanged, against the landscape API server (the client our activities use)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch

from landscape.kubeapi.admin import KubeApiAdmin
from landscape.kubeapi.part import KubeApiServer

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("kubeapi")]

G, V, P = "core.gardener.cloud", "v1beta1", "shoots"
NS = "garden-edge"
MERGE = "application/merge-patch+json"


@pytest.fixture
async def api(kubeapi: KubeApiServer) -> AsyncIterator[client.ApiClient]:
    api_client = await config.new_client_from_config(config_file=kubeapi.endpoints["kubeconfig"])
    async with api_client:
        yield api_client


def stage(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "konfidence.cloud/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {"vector": "a:1"},
    }


async def test_crud_patches_status_conflict(api: client.ApiClient) -> None:
    co = client.CustomObjectsApi(api)
    name = f"as-{uuid.uuid4().hex[:6]}"
    grp, ver, plural = "konfidence.cloud", "v1alpha1", "stages"
    created = await co.create_namespaced_custom_object(grp, ver, NS, plural, stage(name))
    # A dict body without _content_type becomes a JSON patch in this client (the trap); with it, merge.
    merged = await co.patch_namespaced_custom_object(
        grp, ver, NS, plural, name, {"spec": {"vector": "a:2"}}, _content_type=MERGE
    )
    assert merged["spec"]["vector"] == "a:2" and merged["metadata"]["generation"] == 2
    jp = await co.patch_namespaced_custom_object(
        grp, ver, NS, plural, name, [{"op": "replace", "path": "/spec/vector", "value": "a:3"}]
    )
    assert jp["spec"]["vector"] == "a:3"
    applied = await co.patch_namespaced_custom_object(
        grp,
        ver,
        NS,
        plural,
        name,
        {**stage(name), "spec": {"vector": "a:4"}},
        field_manager="apeiro",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    assert applied["spec"]["vector"] == "a:4"
    st = await co.patch_namespaced_custom_object_status(
        grp, ver, NS, plural, name, {"status": {"vectorHistory": ["a:4"]}}, _content_type=MERGE
    )
    assert st["status"] == {"vectorHistory": ["a:4"]} and st["metadata"]["generation"] == 4
    listed = await co.list_namespaced_custom_object(
        grp, ver, NS, plural, field_selector=f"metadata.name={name}"
    )
    assert len(listed["items"]) == 1
    with pytest.raises(client.ApiException) as err:
        await co.replace_namespaced_custom_object(grp, ver, NS, plural, name, created)
    assert err.value.status == 409


async def test_watch_resumes_and_410(api: client.ApiClient, admin: KubeApiAdmin) -> None:
    co = client.CustomObjectsApi(api)
    grp, ver, plural = "konfidence.cloud", "v1alpha1", "stages"
    name = f"aw-{uuid.uuid4().hex[:6]}"
    rv = (await co.create_namespaced_custom_object(grp, ver, NS, plural, stage(name)))["metadata"][
        "resourceVersion"
    ]
    for i in range(3):
        await co.patch_namespaced_custom_object(
            grp, ver, NS, plural, name, {"spec": {"vector": f"b:{i}"}}, _content_type=MERGE
        )
    w = watch.Watch()
    seen = []
    async with w.stream(
        co.list_namespaced_custom_object,
        grp,
        ver,
        NS,
        plural,
        resource_version=rv,
        field_selector=f"metadata.name={name}",
        timeout_seconds=1,
        allow_watch_bookmarks=True,
    ) as stream:
        async for ev in stream:
            seen.append((ev["type"], ev["raw_object"]["metadata"]["resourceVersion"]))
    assert [t for t, _ in seen[:3]] == ["MODIFIED"] * 3
    assert any(t == "BOOKMARK" for t, _ in seen)
    admin.compact()
    with pytest.raises(client.ApiException) as err:
        async with watch.Watch().stream(
            co.list_namespaced_custom_object, grp, ver, NS, plural, resource_version=rv, timeout_seconds=1
        ) as stream:
            async for _ in stream:
                pass
    assert err.value.status == 410
