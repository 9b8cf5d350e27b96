"""The official `kubernetes` client, unchanged, against the landscape API server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.dynamic import DynamicClient

from landscape.kubeapi.admin import KubeApiAdmin
from landscape.kubeapi.part import KubeApiServer

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("kubeapi")]

G, V, P = "konfidence.cloud", "v1alpha1", "stages"
NS = "garden-edge"


@pytest.fixture(scope="module")
def api(kubeapi: KubeApiServer) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(kubeapi.endpoints["kubeconfig"])
    yield api_client
    api_client.close()


def stage(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "Stage",
        "metadata": {"name": name, "labels": labels},
        "spec": {"vector": "github.com/acme/app:1.0.0"},
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_discovery(api: client.ApiClient) -> None:
    assert client.VersionApi(api).get_code().git_version.startswith("v1.")
    dyn = DynamicClient(api)
    shoots = dyn.resources.get(api_version="core.gardener.cloud/v1beta1", kind="Shoot")
    assert shoots.namespaced and shoots.name == "shoots"
    servers = dyn.resources.get(api_version="metal.ironcore.dev/v1alpha1", kind="Server")
    assert not servers.namespaced


def test_create_get_list_selectors_and_errors(api: client.ApiClient) -> None:
    co = client.CustomObjectsApi(api)
    a, b = unique("a"), unique("b")
    created = co.create_namespaced_custom_object(G, V, NS, P, stage(a, ring="one"))
    co.create_namespaced_custom_object(G, V, NS, P, stage(b, ring="two"))
    meta = created["metadata"]
    assert meta["uid"] and meta["generation"] == 1 and int(meta["resourceVersion"]) > 0
    assert meta["creationTimestamp"].endswith("Z")
    assert co.get_namespaced_custom_object(G, V, NS, P, a)["metadata"]["uid"] == meta["uid"]
    got = co.list_namespaced_custom_object(G, V, NS, P, label_selector="ring in (one)")
    assert [o["metadata"]["name"] for o in got["items"]] == [a]
    got = co.list_namespaced_custom_object(G, V, NS, P, field_selector=f"metadata.name={b}")
    assert [o["metadata"]["name"] for o in got["items"]] == [b]
    got = co.list_namespaced_custom_object(G, V, NS, P, label_selector="ring,ring!=one")
    assert b in [o["metadata"]["name"] for o in got["items"]]
    with pytest.raises(client.ApiException) as err:
        co.create_namespaced_custom_object(G, V, NS, P, stage(a))
    assert err.value.status == 409 and '"reason":"AlreadyExists"' in err.value.body
    with pytest.raises(client.ApiException) as err:
        co.get_namespaced_custom_object(G, V, NS, P, "missing")
    assert err.value.status == 404 and '"kind":"Status"' in err.value.body
    with pytest.raises(client.ApiException) as err:
        co.create_namespaced_custom_object(G, V, NS, P, {**stage(unique("c")), "spec": {"vector": 5}})
    assert err.value.status == 422 and "spec.vector" in err.value.body


def test_update_conflict_and_patch_flavours(api: client.ApiClient) -> None:
    co = client.CustomObjectsApi(api)
    name = unique("p")
    first = co.create_namespaced_custom_object(G, V, NS, P, stage(name))
    updated = co.patch_namespaced_custom_object(G, V, NS, P, name, {"spec": {"vector": "x:2"}})  # merge
    assert updated["spec"]["vector"] == "x:2" and updated["metadata"]["generation"] == 2
    with pytest.raises(client.ApiException) as err:
        co.replace_namespaced_custom_object(G, V, NS, P, name, first)  # stale resourceVersion
    assert err.value.status == 409 and '"reason":"Conflict"' in err.value.body
    jp = [{"op": "replace", "path": "/spec/vector", "value": "x:3"}]
    updated = co.patch_namespaced_custom_object(
        G, V, NS, P, name, jp, _content_type="application/json-patch+json"
    )
    assert updated["spec"]["vector"] == "x:3"
    with pytest.raises(
        client.ApiException
    ) as err:  # CRD-like kinds refuse strategic merge, like kube-apiserver
        co.patch_namespaced_custom_object(
            G, V, NS, P, name, {"spec": {}}, _content_type="application/strategic-merge-patch+json"
        )
    assert err.value.status == 415
    applied = {
        "apiVersion": f"{G}/{V}",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {"vector": "x:4"},
    }
    with pytest.raises(client.ApiException) as err:  # another manager owns spec.vector
        co.patch_namespaced_custom_object(
            G, V, NS, P, name, applied, field_manager="ops", _content_type="application/apply-patch+yaml"
        )
    assert err.value.status == 409 and "conflict" in err.value.body
    result = co.patch_namespaced_custom_object(
        G,
        V,
        NS,
        P,
        name,
        applied,
        field_manager="ops",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    assert result["spec"]["vector"] == "x:4"
    assert any(
        m["manager"] == "ops" and m["operation"] == "Apply" for m in result["metadata"]["managedFields"]
    )
    # apply creates when absent and answers 201, as kube-apiserver does; this client maps only 200 for
    # patch, so it returns None then (a trap for callers: read the object back).
    fresh = unique("apply")
    made = co.patch_namespaced_custom_object(
        G,
        V,
        NS,
        P,
        fresh,
        {**applied, "metadata": {"name": fresh}},
        field_manager="ops",
        _content_type="application/apply-patch+yaml",
    )
    assert made is None
    assert co.get_namespaced_custom_object(G, V, NS, P, fresh)["spec"]["vector"] == "x:4"


def test_status_subresource_and_generation(api: client.ApiClient) -> None:
    co = client.CustomObjectsApi(api)
    name = unique("s")
    co.create_namespaced_custom_object(G, V, NS, P, stage(name))
    with_status = co.patch_namespaced_custom_object_status(
        G, V, NS, P, name, {"status": {"vectorHistory": ["Deployed"]}}
    )
    assert with_status["status"] == {"vectorHistory": ["Deployed"]} and with_status["metadata"]["generation"] == 1
    # status written through the main resource is ignored
    main = co.patch_namespaced_custom_object(G, V, NS, P, name, {"status": {"vectorHistory": ["Hacked"]}})
    assert main["status"] == {"vectorHistory": ["Deployed"]} and main["metadata"]["generation"] == 1
    # spec written through the status subresource is ignored
    st = co.patch_namespaced_custom_object_status(G, V, NS, P, name, {"spec": {"vector": "other"}})
    assert st["spec"]["vector"] == "github.com/acme/app:1.0.0"


def test_delete_with_finalizers(api: client.ApiClient) -> None:
    co = client.CustomObjectsApi(api)
    name = unique("f")
    body = stage(name)
    body["metadata"]["finalizers"] = ["apeiro.dev/test"]
    co.create_namespaced_custom_object(G, V, NS, P, body)
    kept = co.delete_namespaced_custom_object(G, V, NS, P, name)
    assert kept["metadata"]["deletionTimestamp"]
    co.patch_namespaced_custom_object(G, V, NS, P, name, {"metadata": {"finalizers": None}})
    with pytest.raises(client.ApiException) as err:
        co.get_namespaced_custom_object(G, V, NS, P, name)
    assert err.value.status == 404


def test_watch_from_resource_version_bookmarks_and_410(api: client.ApiClient, admin: KubeApiAdmin) -> None:
    co = client.CustomObjectsApi(api)
    name = unique("w")
    start = co.create_namespaced_custom_object(G, V, NS, P, stage(name))["metadata"]["resourceVersion"]
    co.patch_namespaced_custom_object(G, V, NS, P, name, {"spec": {"vector": "w:2"}})
    co.delete_namespaced_custom_object(G, V, NS, P, name)
    seen = []
    for ev in watch.Watch().stream(
        co.list_namespaced_custom_object,
        G,
        V,
        NS,
        P,
        resource_version=start,
        field_selector=f"metadata.name={name}",
        timeout_seconds=1,
        allow_watch_bookmarks=True,
    ):
        seen.append(ev["type"])
    assert seen[:2] == ["MODIFIED", "DELETED"] and "BOOKMARK" in seen
    admin.compact()
    with pytest.raises(client.ApiException) as err:
        for _ in watch.Watch().stream(
            co.list_namespaced_custom_object, G, V, NS, P, resource_version=start, timeout_seconds=1
        ):
            pass
    assert err.value.status == 410 and "Expired" in str(err.value.reason)


def test_core_secret_and_injected_faults(api: client.ApiClient, admin: KubeApiAdmin) -> None:
    core = client.CoreV1Api(api)
    name = unique("sec")
    admin.inject(503, count=2, resource="secrets", name=None, verbs=["create"])
    for _ in range(2):
        with pytest.raises(client.ApiException) as err:
            core.create_namespaced_secret(NS, {"metadata": {"name": name}, "stringData": {"k": "v"}})
        assert err.value.status == 503
    secret = core.create_namespaced_secret(NS, {"metadata": {"name": name}, "stringData": {"k": "v"}})
    assert secret.metadata.uid
    admin.inject(429, count=1, resource="secrets", retry_after=3)
    with pytest.raises(client.ApiException) as err:
        core.patch_namespaced_secret(name, NS, {"metadata": {"labels": {"a": "b"}}})
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "3"
    patched = core.patch_namespaced_secret(name, NS, {"metadata": {"labels": {"a": "b"}}})
    assert patched.metadata.labels == {"a": "b"}
    core.delete_namespaced_secret(name, NS)
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_secret(name, NS)
    assert err.value.status == 404
