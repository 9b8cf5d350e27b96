"""Simulated Gardener admission and gardenlet, through the official client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from landscape.gardener import samples
from landscape.gardener.kinds import CONFIRM_DELETION, OPERATION
from landscape.kubeapi.admin import KubeApiAdmin
from landscape.kubeapi.part import KubeApiServer

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("kubeapi")]

G, V, P = "core.gardener.cloud", "v1beta1", "shoots"
NS = samples.PROJECT_NAMESPACE


@pytest.fixture(scope="module")
def co(kubeapi: KubeApiServer) -> Iterator[client.CustomObjectsApi]:
    api_client = config.new_client_from_config(kubeapi.endpoints["kubeconfig"])
    yield client.CustomObjectsApi(api_client)
    api_client.close()


def name() -> str:
    return f"sh-{uuid.uuid4().hex[:6]}"


def wait_for(co: client.CustomObjectsApi, shoot: str, pred: Any, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        obj: dict[str, Any] = co.get_namespaced_custom_object(G, V, NS, P, shoot)
        if pred(obj):
            return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached; last status: {obj.get('status')}")
        time.sleep(0.05)


def ready(obj: dict[str, Any]) -> bool:
    st = obj.get("status") or {}
    return (
        st.get("observedGeneration") == obj["metadata"]["generation"]
        and (st.get("lastOperation") or {}).get("state") == "Succeeded"
        and all(c["status"] == "True" for c in st.get("conditions") or [{"status": "False"}])
    )


def last_state(obj: dict[str, Any]) -> str:
    return str(((obj.get("status") or {}).get("lastOperation") or {}).get("state"))


def api_error(fn: Any) -> client.ApiException:
    with pytest.raises(client.ApiException) as err:
        fn()
    return err.value


def message(err: client.ApiException) -> str:
    return str(json.loads(err.body)["message"])


def test_create_checks(co: client.CustomObjectsApi) -> None:
    body = samples.shoot(name(), profile="nope")
    err = api_error(lambda: co.create_namespaced_custom_object(G, V, NS, P, body))
    assert err.status == 403 and "could not find referenced cloud profile" in err.body
    err = api_error(lambda: co.create_namespaced_custom_object(G, V, NS, P, samples.shoot(name(), version="1.30.3")))
    assert err.status == 403 and 'Unsupported value: "1.30.3"' in message(err)
    err = api_error(lambda: co.create_namespaced_custom_object(G, V, NS, P, samples.shoot(name(), version="1.28.15")))
    # Gardener lists only active versions on create: the expired one is simply not offered.
    assert err.status == 403 and 'Unsupported value: "1.28.15"' in message(err)
    assert '"1.30.8"' in message(err) and message(err).count("1.28.15") == 1
    body = samples.shoot(name())
    body["spec"]["provider"]["workers"][0]["kubernetes"] = {"version": "1.31.4"}
    err = api_error(lambda: co.create_namespaced_custom_object(G, V, NS, P, body))
    assert err.status == 422 and "must not be higher than control plane version" in err.body
    body = samples.shoot(name(), version="1.32.2")
    body["spec"]["provider"]["workers"][0]["kubernetes"] = {"version": "1.28.15"}
    err = api_error(lambda: co.create_namespaced_custom_object(G, V, NS, P, body))
    assert err.status == 422 and "at most three minor versions behind control plane version" in err.body


def test_lifecycle_upgrade_rules_and_deletion(co: client.CustomObjectsApi) -> None:
    n = name()
    co.create_namespaced_custom_object(G, V, NS, P, samples.shoot(n, version="1.30"))
    obj = wait_for(co, n, ready)
    assert obj["spec"]["kubernetes"]["version"] == "1.30.8"  # defaulted to the newest usable patch
    assert obj["status"]["lastOperation"]["type"] == "Create" and "gardener" in obj["metadata"]["finalizers"]
    assert {c["type"] for c in obj["status"]["conditions"]} == {
        "APIServerAvailable",
        "ControlPlaneHealthy",
        "ObservabilityComponentsHealthy",
        "EveryNodeReady",
        "SystemComponentsHealthy",
    }
    err = api_error(
        lambda: co.patch_namespaced_custom_object(G, V, NS, P, n, {"spec": {"kubernetes": {"version": "1.29.10"}}})
    )
    assert err.status == 422 and "downgrade is not supported" in err.body
    err = api_error(
        lambda: co.patch_namespaced_custom_object(G, V, NS, P, n, {"spec": {"kubernetes": {"version": "1.32.2"}}})
    )
    assert err.status == 422 and "cannot skip a minor version" in err.body
    err = api_error(lambda: co.patch_namespaced_custom_object(G, V, NS, P, n, {"spec": {"region": "edge-1"}}))
    assert err.status == 422 and "immutable" in err.body
    patched = co.patch_namespaced_custom_object(
        G,
        V,
        NS,
        P,
        n,
        {"spec": {"kubernetes": {"version": "1.31.4"}}},
        _content_type="application/strategic-merge-patch+json",
    )
    # Right after the PATCH the previous Succeeded is still there: only the generation rule tells.
    assert patched["metadata"]["generation"] == 2
    obj = wait_for(co, n, ready)
    assert obj["status"]["lastOperation"]["type"] == "Reconcile" and obj["status"]["observedGeneration"] == 2
    # strategic merge by worker name keeps the other fields of the pool
    co.patch_namespaced_custom_object(
        G,
        V,
        NS,
        P,
        n,
        {
            "spec": {
                "provider": {
                    "workers": [
                        {
                            "name": "pool1",
                            "machine": {"image": {"name": "gardenlinux", "version": "1877.3.0"}},
                        }
                    ]
                }
            }
        },
        _content_type="application/strategic-merge-patch+json",
    )
    obj = wait_for(co, n, ready)
    assert obj["spec"]["provider"]["workers"][0]["machine"]["type"] == "local-small"
    err = api_error(lambda: co.delete_namespaced_custom_object(G, V, NS, P, n))
    assert err.status == 403 and CONFIRM_DELETION in err.body
    co.patch_namespaced_custom_object(G, V, NS, P, n, {"metadata": {"annotations": {CONFIRM_DELETION: "true"}}})
    co.delete_namespaced_custom_object(G, V, NS, P, n)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            co.get_namespaced_custom_object(G, V, NS, P, n)
        except client.ApiException as exc:
            assert exc.status == 404
            break
        time.sleep(0.05)
    else:
        raise AssertionError("shoot was not deleted")


def test_quota_failure_and_retry_annotation(co: client.CustomObjectsApi, admin: KubeApiAdmin) -> None:
    n = name()
    admin.post("/admin/gardener/faults", {"fault": "rate-limited", "shoot": f"{NS}/{n}"})
    co.create_namespaced_custom_object(G, V, NS, P, samples.shoot(n))
    obj = wait_for(co, n, lambda o: last_state(o) == "Failed")
    assert obj["status"]["lastErrors"][0]["codes"] == ["ERR_INFRA_RATE_LIMITS_EXCEEDED"]
    gen = obj["metadata"]["generation"]
    after = co.patch_namespaced_custom_object(G, V, NS, P, n, {"metadata": {"annotations": {OPERATION: "retry"}}})
    assert OPERATION not in (after["metadata"].get("annotations") or {})  # the API server drops it
    assert after["metadata"]["generation"] == gen + 1
    obj = wait_for(co, n, ready)
    assert "lastErrors" not in obj["status"]


def test_stuck_and_flap(co: client.CustomObjectsApi, admin: KubeApiAdmin) -> None:
    n = name()
    admin.post("/admin/gardener/faults", {"fault": "stuck", "shoot": f"{NS}/{n}", "atProgress": 50})
    co.create_namespaced_custom_object(G, V, NS, P, samples.shoot(n))
    obj = wait_for(co, n, lambda o: (o.get("status") or {}).get("lastOperation", {}).get("progress", 0) >= 50)
    time.sleep(0.3)
    obj = co.get_namespaced_custom_object(G, V, NS, P, n)
    assert last_state(obj) == "Processing" and obj["status"]["lastOperation"]["progress"] == 50
    co.patch_namespaced_custom_object(G, V, NS, P, n, {"metadata": {"annotations": {OPERATION: "reconcile"}}})
    wait_for(co, n, ready)
    f = name()
    admin.post("/admin/gardener/faults", {"fault": "flap", "shoot": f"{NS}/{f}", "atProgress": 0, "simSeconds": 6000})
    co.create_namespaced_custom_object(G, V, NS, P, samples.shoot(f))
    flapped = wait_for(
        co, f, lambda o: any(c["status"] == "False" for c in (o.get("status") or {}).get("conditions", []))
    )
    assert flapped["status"]["lastOperation"]["state"] == "Succeeded"
    wait_for(co, f, ready)
