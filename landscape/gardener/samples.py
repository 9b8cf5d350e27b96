"""Sample garden content for the demo, the tests and the benchmark: a CloudProfile, a project
namespace and a credentials binding, seeded over HTTP so it works against any running server.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

PROFILE = "local"
PROJECT_NAMESPACE = "garden-edge"
BINDING = "local-credentials"


def _date(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def cloud_profile(name: str = PROFILE) -> dict[str, Any]:
    """Versions chosen to exercise the planner: an expired minor, a deprecated one expiring soon,
    several supported minors, and a preview."""
    return {
        "apiVersion": "core.gardener.cloud/v1beta1",
        "kind": "CloudProfile",
        "metadata": {"name": name},
        "spec": {
            "type": "local",
            "kubernetes": {
                "versions": [
                    {"version": "1.33.0", "classification": "preview"},
                    {"version": "1.32.2", "classification": "supported"},
                    {"version": "1.32.1", "classification": "supported"},
                    {"version": "1.31.4", "classification": "supported"},
                    {"version": "1.30.8", "classification": "supported"},
                    {"version": "1.30.2", "classification": "deprecated", "expirationDate": _date(-10)},
                    {"version": "1.29.10", "classification": "deprecated", "expirationDate": _date(20)},
                    {"version": "1.28.15", "classification": "deprecated", "expirationDate": _date(-30)},
                ]
            },
            "machineImages": [
                {
                    "name": "gardenlinux",
                    "versions": [
                        {"version": "1877.3.0", "classification": "supported"},
                        {"version": "1592.9.0", "classification": "deprecated", "expirationDate": _date(15)},
                        {"version": "1443.3.0", "classification": "deprecated", "expirationDate": _date(-5)},
                    ],
                }
            ],
            "machineTypes": [
                {"name": "local-small", "cpu": "2", "gpu": "0", "memory": "4Gi", "usable": True},
                {"name": "local-large", "cpu": "8", "gpu": "0", "memory": "32Gi", "usable": True},
            ],
            "regions": [
                {"name": "local", "zones": [{"name": "local-a"}]},
                {"name": "edge-1", "zones": [{"name": "edge-1a"}]},
            ],
        },
    }


def seed(url: str, namespace: str = PROJECT_NAMESPACE, profile: str = PROFILE, binding: str = BINDING) -> None:
    """Create (or leave alone) the namespace, secret, credentials binding and CloudProfile."""
    objects = [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        (
            f"/api/v1/namespaces/{namespace}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{binding}-secret"},
                "stringData": {"token": "not-a-real-token"},
            },
        ),
        (
            f"/apis/security.gardener.cloud/v1alpha1/namespaces/{namespace}/credentialsbindings",
            {
                "apiVersion": "security.gardener.cloud/v1alpha1",
                "kind": "CredentialsBinding",
                "metadata": {"name": binding},
                "provider": {"type": "local"},
                "credentialsRef": {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "name": f"{binding}-secret",
                    "namespace": namespace,
                },
            },
        ),
        ("/apis/core.gardener.cloud/v1beta1/cloudprofiles", cloud_profile(profile)),
    ]
    for path, body in objects:
        request = urllib.request.Request(
            url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5.0):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # already there: seeding is idempotent
                raise RuntimeError(f"seeding {path} failed: {exc.code} {exc.read()[:300]!r}") from None


def shoot(
    name: str,
    version: str = "1.30.8",
    namespace: str = PROJECT_NAMESPACE,
    profile: str = PROFILE,
    image_version: str = "1592.9.0",
    workers: int = 1,
) -> dict[str, Any]:
    return {
        "apiVersion": "core.gardener.cloud/v1beta1",
        "kind": "Shoot",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "cloudProfile": {"kind": "CloudProfile", "name": profile},
            "region": "local",
            "credentialsBindingName": BINDING,
            "kubernetes": {"version": version},
            "networking": {"type": "calico", "nodes": "10.10.0.0/16"},
            "provider": {
                "type": "local",
                "workers": [
                    {
                        "name": f"pool{i}",
                        "minimum": 1,
                        "maximum": 2,
                        "machine": {
                            "type": "local-small",
                            "image": {"name": "gardenlinux", "version": image_version},
                        },
                    }
                    for i in range(1, workers + 1)
                ],
            },
            "maintenance": {
                "timeWindow": {"begin": "220000+0000", "end": "230000+0000"},
                "autoUpdate": {"kubernetesVersion": False, "machineImageVersion": False},
            },
        },
    }
