"""The simulated garden against Gardener's own objects: the provider-local Shoot example, applied
unchanged, and CloudProfiles in the newer ``lifecycle`` form.

The CloudProfile "local" is the one Gardener's local setup installs
(dev-setup/gardenconfig/components/cloudprofile/cloudprofile.yaml at b312835d1784, the commit the
Shoot example in ../shared/testdata/gardener-examples comes from), written out here field by field.
This module runs its own API server: the shared one is seeded with the demo's "local" profile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from landscape.kubeapi.part import KubeApiServer
from tests.server_fixtures import shared_testdata

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("kubeapi")]

CORE = "/apis/core.gardener.cloud/v1beta1"
NS = "garden-local"

UPSTREAM_LOCAL_PROFILE: dict[str, Any] = {
    "apiVersion": "core.gardener.cloud/v1beta1",
    "kind": "CloudProfile",
    "metadata": {"name": "local"},
    "spec": {
        "type": "local",
        "regions": [{"name": "local"}],
        "kubernetes": {
            "versions": [
                {"version": "1.36.0"},
                {"version": "1.35.4"},
                {"version": "1.34.3"},
                {"version": "1.33.0"},
                {"version": "1.32.0"},
            ]
        },
        "machineTypes": [{"cpu": "1", "gpu": "0", "memory": "8Gi", "name": "local"}],
        "machineImages": [
            {
                "name": "local",
                "versions": [
                    {
                        "version": "2.0.0",
                        "classification": "preview",
                        "cri": [{"name": "containerd"}],
                        "inPlaceUpdates": {"supported": True, "minVersionForUpdate": "1.0.0"},
                    },
                    {"version": "1.0.0", "cri": [{"name": "containerd"}], "inPlaceUpdates": {"supported": True}},
                ],
            }
        ],
        "providerConfig": {
            "apiVersion": "local.provider.extensions.gardener.cloud/v1alpha1",
            "kind": "CloudProfileConfig",
            "machineImages": [
                {
                    "name": "local",
                    "versions": [
                        {"version": "1.0.0", "image": "local-skaffold/gardener-extension-provider-local/node:v1.0.0"},
                        {"version": "2.0.0", "image": "local-skaffold/gardener-extension-provider-local/node:v1.0.0"},
                    ],
                }
            ],
        },
    },
}


def _ts(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def lifecycle_profile(name: str) -> dict[str, Any]:
    """The ``lifecycle`` form (Gardener's VersionClassificationLifecycle), one version per stage."""
    profile = json.loads(json.dumps(UPSTREAM_LOCAL_PROFILE))
    profile["metadata"]["name"] = name
    profile["spec"]["kubernetes"]["versions"] = [
        # scheduled: every stage in the future -> unavailable
        {"version": "1.36.0", "lifecycle": [{"classification": "preview", "startTime": _ts(30)}]},
        # preview now, supported later
        {
            "version": "1.35.4",
            "lifecycle": [{"classification": "preview"}, {"classification": "supported", "startTime": _ts(10)}],
        },
        {
            "version": "1.34.3",
            "lifecycle": [
                {"classification": "preview"},
                {"classification": "supported", "startTime": _ts(-60)},
                {"classification": "deprecated", "startTime": _ts(60)},
            ],
        },
        {
            "version": "1.33.0",
            "lifecycle": [{"classification": "supported"}, {"classification": "expired", "startTime": _ts(-1)}],
        },
    ]
    return profile


@pytest.fixture(scope="module")
def garden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    part = KubeApiServer(settings={"gardener.speed": "3000"}, seed_garden=False)
    part.start(Path(tmp_path_factory.mktemp("garden-upstream")))
    try:
        with httpx.Client(base_url=part.url, timeout=10) as http:
            for path, body in (
                ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
                (
                    f"/api/v1/namespaces/{NS}/secrets",
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "local"}, "stringData": {"k": "v"}},
                ),
                (
                    f"/apis/security.gardener.cloud/v1alpha1/namespaces/{NS}/credentialsbindings",
                    {
                        "apiVersion": "security.gardener.cloud/v1alpha1",
                        "kind": "CredentialsBinding",
                        "metadata": {"name": "local"},
                        "provider": {"type": "local"},
                        "credentialsRef": {"apiVersion": "v1", "kind": "Secret", "name": "local", "namespace": NS},
                    },
                ),
                (f"{CORE}/cloudprofiles", UPSTREAM_LOCAL_PROFILE),
            ):
                resp = http.post(path, json=body)
                assert resp.status_code == 201, resp.text
            yield http
    finally:
        part.stop()


def upstream_shoot() -> dict[str, Any]:
    path = shared_testdata() / "gardener-examples" / "provider-local-shoot.yaml"
    if not path.is_file():
        pytest.skip(f"Gardener's example is not here: {path}")
    return dict(yaml.safe_load(path.read_text()))


def test_provider_local_shoot_is_accepted_unchanged(garden: httpx.Client) -> None:
    body = upstream_shoot()
    sent = json.loads(json.dumps(body))
    resp = garden.post(f"{CORE}/namespaces/{NS}/shoots", json=body)
    assert resp.status_code == 201, resp.text
    shoot = resp.json()
    # Everything the example says is kept as it said it ...
    for key in ("cloudProfile", "credentialsBindingName", "region", "networking"):
        assert shoot["spec"][key] == sent["spec"][key]
    assert shoot["spec"]["kubernetes"]["kubelet"] == sent["spec"]["kubernetes"]["kubelet"]
    assert shoot["metadata"]["annotations"] == sent["metadata"]["annotations"]
    # ... and what it leaves out is defaulted as Gardener's ShootMutator does: the highest supported
    # Kubernetes version, the first machine image at its newest non-preview version.
    assert shoot["spec"]["kubernetes"]["version"] == "1.36.0"
    assert shoot["spec"]["provider"]["workers"][0]["machine"]["image"] == {"name": "local", "version": "1.0.0"}
    deadline = time.monotonic() + 20
    while True:
        obj = garden.get(f"{CORE}/namespaces/{NS}/shoots/local").json()
        last = (obj.get("status") or {}).get("lastOperation") or {}
        if (
            last.get("state") == "Succeeded"
            and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        ):
            break
        assert time.monotonic() < deadline, f"the example shoot never became ready: {obj.get('status')}"
        time.sleep(0.05)


def _shoot(name: str, profile: str, version: str | None, worker_version: str | None = None) -> dict[str, Any]:
    body = upstream_shoot()
    body["metadata"] = {"name": name, "namespace": NS}
    body["spec"]["cloudProfile"] = {"name": profile}
    if version:
        body["spec"]["kubernetes"]["version"] = version
    if worker_version:
        body["spec"]["provider"]["workers"][0]["kubernetes"] = {"version": worker_version}
    return body


def _message(resp: httpx.Response) -> str:
    return str(resp.json().get("message"))


def test_lifecycle_profile(garden: httpx.Client) -> None:
    resp = garden.post(f"{CORE}/cloudprofiles", json=lifecycle_profile("lifecycle"))
    assert resp.status_code == 201, resp.text
    post = lambda body: garden.post(f"{CORE}/namespaces/{NS}/shoots", json=body)  # noqa: E731
    # Unavailable (scheduled) and expired versions cannot be used for a new shoot; the preview one can.
    for version in ("1.36.0", "1.33.0"):
        resp = post(_shoot(f"lc-{version.replace('.', '-')}", "lifecycle", version))
        assert resp.status_code == 403 and f'Unsupported value: "{version}"' in _message(resp), resp.text
        assert '"1.35.4 (preview)"' in _message(resp) and '"1.34.3"' in _message(resp)
    assert post(_shoot("lc-preview", "lifecycle", "1.35.4")).status_code == 201
    # Defaulting picks the highest *supported* version, never a preview one.
    resp = post(_shoot("lc-default", "lifecycle", None))
    assert resp.status_code == 201 and resp.json()["spec"]["kubernetes"]["version"] == "1.34.3"
    resp = post(_shoot("lc-minor", "lifecycle", "1.35"))
    assert resp.status_code == 403 and "couldn't find a suitable version for 1.35" in _message(resp)


def test_lifecycle_profile_validation(garden: httpx.Client) -> None:
    profile = lifecycle_profile("bad-lifecycle")
    versions = profile["spec"]["kubernetes"]["versions"]
    versions[0]["classification"] = "supported"  # both forms at once
    versions[1]["lifecycle"] = [{"classification": "supported"}, {"classification": "preview", "startTime": _ts(1)}]
    versions[2]["lifecycle"][2].pop("startTime")  # only the leading stage may omit its start
    resp = garden.post(f"{CORE}/cloudprofiles", json=profile)
    assert resp.status_code == 422, resp.text
    causes = {(c["field"], c["reason"]) for c in resp.json()["details"]["causes"]}
    assert ("spec.kubernetes.versions[0]", "FieldValueForbidden") in causes
    assert ("spec.kubernetes.versions[1].lifecycle[1].classification", "FieldValueInvalid") in causes
    assert ("spec.kubernetes.versions[2].lifecycle[2]", "FieldValueRequired") in causes


def test_worker_skew_and_updates_follow_gardener(garden: httpx.Client) -> None:
    post = lambda body: garden.post(f"{CORE}/namespaces/{NS}/shoots", json=body)  # noqa: E731
    # Three minors behind the control plane is allowed, four is not; a pool never leads.
    assert post(_shoot("skew-3", "local", "1.35.4", worker_version="1.32.0")).status_code == 201
    resp = post(_shoot("skew-4", "local", "1.36.0", worker_version="1.32.0"))
    assert resp.status_code == 422 and "at most three minor versions behind" in resp.text
    resp = post(_shoot("skew-lead", "local", "1.34.3", worker_version="1.35.4"))
    assert resp.status_code == 422 and "must not be higher than control plane version" in resp.text
    # A pool may skip minors upwards (rolling update) but never goes down.
    path = f"{CORE}/namespaces/{NS}/shoots/skew-3"
    patch = {"spec": {"provider": {"workers": [{"name": "local", "kubernetes": {"version": "1.34.3"}}]}}}
    resp = garden.patch(path, json=patch, headers={"content-type": "application/strategic-merge-patch+json"})
    assert resp.status_code == 200, resp.text
    patch["spec"]["provider"]["workers"][0]["kubernetes"]["version"] = "1.33.0"
    resp = garden.patch(path, json=patch, headers={"content-type": "application/strategic-merge-patch+json"})
    assert resp.status_code == 422 and "downgrade is not supported" in resp.text
    # Machine image versions must be in the CloudProfile.
    patch = {
        "spec": {
            "provider": {
                "workers": [
                    {"name": "local", "machine": {"type": "local", "image": {"name": "local", "version": "9.9.9"}}}
                ]
            }
        }
    }
    resp = garden.patch(path, json=patch, headers={"content-type": "application/strategic-merge-patch+json"})
    assert resp.status_code == 403 and 'Unsupported value: "9.9.9"' in _message(resp)


def test_maintenance_window_limits(garden: httpx.Client) -> None:
    post = lambda body: garden.post(f"{CORE}/namespaces/{NS}/shoots", json=body)  # noqa: E731
    for name, begin, end, text in (
        ("mw-long", "000000+0000", "235959+0000", "must not be greater than 6h0m0s"),
        ("mw-short", "220000+0000", "221000+0000", "must not be smaller than 30m0s"),
    ):
        body = _shoot(name, "local", None)
        body["spec"]["maintenance"] = {"timeWindow": {"begin": begin, "end": end}}
        resp = post(body)
        assert resp.status_code == 422 and text in resp.text, resp.text
    body = _shoot("mw-midnight", "local", None)
    body["spec"]["maintenance"] = {"timeWindow": {"begin": "230000+0100", "end": "030000+0100"}}  # 4 h over midnight
    assert post(body).status_code == 201
