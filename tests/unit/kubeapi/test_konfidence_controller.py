"""The simulated Konfidence Stage controller, in process: StageVersion and VectorDeployment per rollout,
conditions for the generation, vectorHistory, a newer vector replacing one in flight, faults, events."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from landscape.konfidence import fnv
from landscape.kubeapi.app import build_server, make_app

BASE = "/apis/konfidence.cloud/v1alpha1/namespaces/default"
MERGE = {"content-type": "application/merge-patch+json"}
V1 = "registry.example/ocm//example.org/app:1.0.0"
V2 = "registry.example/ocm//example.org/app:2.0.0"
V3 = "registry.example/ocm//example.org/app:3.0.0"


@pytest.fixture
def api() -> Iterator[TestClient]:
    server = build_server(["landscape.konfidence"], {"konfidence.deploySeconds": 0.05})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = TestClient(make_app(server))
    with client:
        yield client


def wait_for(fetch: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def stage(api: TestClient, name: str = "dev") -> dict[str, Any]:
    result: dict[str, Any] = api.get(f"{BASE}/stages/{name}").json()
    return result


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str, int]]:
    return {
        c["type"]: (c["status"], c["reason"], c.get("observedGeneration", 0))
        for c in (obj.get("status") or {}).get("conditions") or []
    }


def ready(generation: int) -> Callable[[dict[str, Any]], bool]:
    return lambda s: conditions(s).get("Ready", ("", "", 0))[0] == "True" and conditions(s)["Ready"][2] == generation


def create(api: TestClient, vector: str, name: str = "dev") -> None:
    body = {
        "apiVersion": "konfidence.cloud/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {"vector": vector},
    }
    assert api.post(f"{BASE}/stages", json=body).status_code == 201


def point(api: TestClient, vector: str, name: str = "dev") -> None:
    r = api.patch(f"{BASE}/stages/{name}", content=json.dumps({"spec": {"vector": vector}}), headers=MERGE)
    assert r.status_code == 200, r.text


def test_a_rollout_creates_stage_version_and_vector_deployment_and_reports_ready(api: TestClient) -> None:
    create(api, V1)
    obj = wait_for(lambda: stage(api), ready(1))
    assert conditions(obj) == {
        "Ready": ("True", "Ready", 1),
        "VectorDeploymentCreated": ("True", "VectorDeploymentCreated", 1),
        "VectorDeployed": ("True", "VectorDeployed", 1),
        "VectorMigrated": ("True", "VectorMigrated", 1),
    }
    assert obj["status"]["vectorHistory"] == [V1]
    name = f"dev-{fnv(f'dev-{V1}-1', 13)}"
    assert obj["status"]["latestVectorDeploymentRef"] == {
        "apiGroup": "konfidence.cloud",
        "kind": "VectorDeployment",
        "name": name,
        "namespace": "default",
    }
    sv = api.get(f"{BASE}/stageversions/{name}").json()
    assert sv["spec"] == {"vector": V1, "stageGeneration": 1, "stageRef": {"name": "dev"}}
    assert sv["metadata"]["labels"]["konfidence.cloud/stage-name"] == "dev"
    assert sv["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    vd = api.get(f"{BASE}/vectordeployments/{name}").json()
    assert vd["spec"]["vector"] == V1 and conditions(vd)["VectorDeployed"][0] == "True"
    reasons = [e["reason"] for e in api.get("/api/v1/namespaces/default/events").json()["items"]]
    assert "StageVersionReconciled" in reasons and "VectorDeployed" in reasons


def test_a_new_vector_is_a_new_generation_and_appends_to_history(api: TestClient) -> None:
    create(api, V1)
    wait_for(lambda: stage(api), ready(1))
    point(api, V2)
    obj = wait_for(lambda: stage(api), ready(2))
    assert obj["status"]["vectorHistory"] == [V1, V2]
    assert len(api.get(f"{BASE}/stageversions").json()["items"]) == 2
    point(api, V1)  # a rollback is a new rollout too
    obj = wait_for(lambda: stage(api), ready(3))
    assert obj["status"]["vectorHistory"] == [V1, V2, V1]


def test_a_newer_vector_replaces_one_in_flight(api: TestClient) -> None:
    api.post("/admin/konfidence/faults", json={"fault": "slow", "seconds": 0.4, "stage": "default/dev"})
    create(api, V1)
    wait_for(lambda: stage(api), lambda s: "VectorDeploymentCreated" in conditions(s))
    point(api, V2)
    point(api, V3)
    obj = wait_for(lambda: stage(api), ready(3))
    assert obj["status"]["vectorHistory"] == [V3]
    superseded = [
        vd
        for vd in api.get(f"{BASE}/vectordeployments").json()["items"]
        if conditions(vd).get("Ready", ("", ""))[1] == "Superseded"
    ]
    assert {vd["spec"]["vector"] for vd in superseded} == {V1, V2}


def test_faults_deploy_failed_and_never_ready(api: TestClient) -> None:
    api.post("/admin/konfidence/faults", json={"fault": "deploy-failed", "stage": "default/bad"})
    api.post("/admin/konfidence/faults", json={"fault": "never-ready", "stage": "default/sick"})
    create(api, V1, "bad")
    create(api, V1, "sick")
    bad = wait_for(
        lambda: stage(api, "bad"),
        lambda s: (
            conditions(s).get("VectorDeployed", ("",))[0] == "False"
            and conditions(s)["VectorDeployed"][1] == "ArtifactDeploymentFailed"
        ),
    )
    assert conditions(bad)["VectorDeployed"][1] == "ArtifactDeploymentFailed"
    sick = wait_for(lambda: stage(api, "sick"), lambda s: conditions(s).get("Ready", ("", ""))[1] == "ActivationFailed")
    assert conditions(sick)["VectorDeployed"][0] == "True" and conditions(sick)["Ready"][0] == "False"
    assert "vectorHistory" not in sick["status"]
    history = api.get("/admin/konfidence/history").json()
    assert {(h["stage"], h["ready"]) for h in history} == {("default/bad", False), ("default/sick", False)}


def test_deleting_a_stage_deletes_what_it_owns(api: TestClient) -> None:
    create(api, V1)
    wait_for(lambda: stage(api), ready(1))
    assert api.delete(f"{BASE}/stages/dev").status_code == 200
    left = wait_for(lambda: api.get(f"{BASE}/stageversions").json()["items"], lambda items: not items)
    assert left == [] and api.get(f"{BASE}/vectordeployments").json()["items"] == []


def test_fnv_names_are_stable_and_safe() -> None:
    name = fnv("dev-x-1", 13)
    assert len(name) == 13 and set(name) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert fnv("dev-x-1", 13) == name != fnv("dev-x-2", 13)
    assert len(fnv("x", 25)) == 25 and len(fnv("x", 5)) == 5


def promotion(name: str, seq: int, vector: str, approval: bool = False, config: str = "cfg") -> dict[str, Any]:
    return {
        "apiVersion": "konfidence.cloud/v1alpha1",
        "kind": "VectorPromotion",
        "metadata": {"name": name},
        "spec": {
            "vectorPromotionConfigName": config,
            "source": {"kind": "VectorTemplate", "name": "t"},
            "target": {"kind": "Stage", "name": "dev", "landscape": "local"},
            "vector": vector,
            "sequence": seq,
            "requireApproval": approval,
        },
    }


def promo(api: TestClient, name: str) -> dict[str, Any]:
    result: dict[str, Any] = api.get(f"{BASE}/vectorpromotions/{name}").json()
    return result


def state(api: TestClient, name: str, want: str) -> dict[str, Any]:
    return wait_for(lambda: promo(api, name), lambda p: (p.get("status") or {}).get("state") == want)


def approve(api: TestClient, name: str, who: str) -> None:
    obj = promo(api, name)
    status = obj.get("status") or {}
    status["approval"] = {"approvedBy": who, "approvedAt": "2026-01-02T03:04:05Z"}
    status["conditions"] = [
        *(status.get("conditions") or []),
        {
            "type": "Approved",
            "status": "True",
            "reason": "ManuallyApproved",
            "message": f"approved by {who}",
            "lastTransitionTime": "2026-01-02T03:04:05Z",
        },
    ]
    r = api.put(f"{BASE}/vectorpromotions/{name}/status", json={**obj, "status": status})
    assert r.status_code == 200, r.text


def test_a_vector_promotion_executes_against_its_stage(api: TestClient) -> None:
    create(api, V1)
    wait_for(lambda: stage(api), ready(1))
    assert api.post(f"{BASE}/vectorpromotions", json=promotion("p1", 1, V2)).status_code == 201
    done = state(api, "p1", "Succeeded")
    assert done["status"]["promotedStageRef"]["name"] == "dev"
    assert stage(api)["spec"]["vector"] == V2 and stage(api)["status"]["vectorHistory"][-1] == V2


def test_approval_then_newest_cleared_wins_and_older_ones_are_locked(api: TestClient) -> None:
    create(api, V1)
    wait_for(lambda: stage(api), ready(1))
    api.post(f"{BASE}/vectorpromotions", json=promotion("old", 1, V2, approval=True))
    api.post(f"{BASE}/vectorpromotions", json=promotion("new", 2, V3, approval=True))
    state(api, "old", "Waiting")
    state(api, "new", "Waiting")
    approve(api, "new", "alice")
    assert state(api, "new", "Succeeded")["status"]["approval"]["approvedBy"] == "alice"
    old = state(api, "old", "Superseded")
    assert {c["type"]: c["reason"] for c in old["status"]["conditions"]}["Succeeded"] == "PromotionSuperseded"
    approve(api, "old", "bob")  # locked: approving a superseded promotion changes nothing
    time.sleep(0.3)
    assert promo(api, "old")["status"]["state"] == "Superseded" and stage(api)["spec"]["vector"] == V3
    r = api.patch(f"{BASE}/vectorpromotions/old", content=json.dumps({"spec": {"vector": V1}}), headers=MERGE)
    assert r.status_code == 422  # the record is immutable


def test_a_promotion_to_a_missing_stage_is_blocked(api: TestClient) -> None:
    api.post(f"{BASE}/vectorpromotions", json=promotion("lost", 1, V1))
    blocked = state(api, "lost", "Blocked")
    assert {c["type"]: c["reason"] for c in blocked["status"]["conditions"]}["Succeeded"] == (
        "PromotionTargetUnresolved"
    )
