"""Pure parts of the cluster lifecycle: planner, readiness rule, windows, manifest, input checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from activities.gardener.activities import build_plan
from activities.gardener.manifest import shoot_manifest
from definitions.cluster import ClusterSpec, PlanInput
from definitions.cluster_plan import (
    VersionError,
    in_maintenance_window,
    plan_control_plane,
    profile_kubernetes_versions,
    seconds_until_window,
    shoot_readiness,
    worker_skew_problem,
)
from landscape.gardener import samples

NOW = datetime.now(UTC)


def versions(profile: dict[str, Any] | None = None) -> Any:
    return profile_kubernetes_versions(profile or samples.cloud_profile())


def test_plan_one_minor_at_a_time_with_highest_patch() -> None:
    plan = plan_control_plane(versions(), "1.29.10", "1.32.2", NOW)
    assert plan.versions() == ["1.30.8", "1.31.4", "1.32.2"]
    assert any("1.30.2: expired" in s for s in plan.skipped)


@pytest.mark.parametrize(
    ("current", "target", "message"),
    [
        ("1.31.4", "1.30.8", "cannot downgrade"),
        ("1.30.8", "1.31.7", "not offered"),
        ("1.27.1", "1.28.15", "expired"),
        ("1.32.2", "1.33.0", "preview"),
    ],
)
def test_plan_refuses(current: str, target: str, message: str) -> None:
    with pytest.raises(VersionError, match=message):
        plan_control_plane(versions(), current, target, NOW)


def test_plan_refuses_a_gap_it_cannot_cross() -> None:
    profile = samples.cloud_profile()
    profile["spec"]["kubernetes"]["versions"] = [
        v for v in profile["spec"]["kubernetes"]["versions"] if not v["version"].startswith("1.31.")
    ]
    with pytest.raises(VersionError, match=r"no usable 1\.31\.x"):
        plan_control_plane(versions(profile), "1.30.8", "1.32.2", NOW)


def test_preview_allowed_on_request() -> None:
    assert plan_control_plane(versions(), "1.32.2", "1.33.0", NOW, allow_preview=True).versions() == [
        "1.33.0"
    ]


def test_build_plan_pulls_pinned_workers_along_and_updates_images() -> None:
    shoot = samples.shoot("x", version="1.30.8")
    shoot["spec"]["provider"]["workers"][0]["kubernetes"] = {"version": "1.29.10"}
    shoot["spec"]["kubernetes"]["version"] = "1.29.10"
    shoot["spec"]["provider"]["workers"][0]["kubernetes"] = {"version": "1.29.10"}
    plan = build_plan(
        shoot,
        samples.cloud_profile(),
        PlanInput(name="x", namespace="n", target_version="1.32.2", machine_image_version="latest"),
        NOW,
    )
    targets = [(s.target, s.kubernetes_version or s.machine_image_version) for s in plan.steps]
    assert targets[:3] == [("controlPlane", "1.30.8"), ("controlPlane", "1.31.4"), ("controlPlane", "1.32.2")]
    assert ("worker:pool1", "1.32.2") in targets and targets[-1] == ("worker:pool1", "1877.3.0")


def test_build_plan_keeps_skew_within_three_minors() -> None:
    shoot = samples.shoot("x", version="1.31.4")
    shoot["spec"]["provider"]["workers"][0]["kubernetes"] = {"version": "1.28.15"}
    plan = build_plan(
        shoot,
        samples.cloud_profile(),
        PlanInput(name="x", namespace="n", target_version="1.32.2", upgrade_workers=False),
        NOW,
    )
    assert [(s.target, s.kubernetes_version) for s in plan.steps] == [
        ("worker:pool1", "1.29.10"),
        ("controlPlane", "1.32.2"),
    ]


def test_worker_skew_rule() -> None:
    assert worker_skew_problem("1.30.8", "1.31.4") is not None
    assert worker_skew_problem("1.32.2", "1.28.15") is not None
    assert worker_skew_problem("1.32.2", "1.29.10") is None


def test_readiness_needs_generation_operation_and_conditions() -> None:
    obj = {
        "metadata": {"generation": 2, "resourceVersion": "9"},
        "status": {
            "observedGeneration": 1,
            "lastOperation": {"type": "Reconcile", "state": "Succeeded", "progress": 100},
            "conditions": [{"type": "EveryNodeReady", "status": "True"}],
        },
    }
    assert not shoot_readiness(obj).ready  # the stale Succeeded right after a PATCH
    obj["status"]["observedGeneration"] = 2
    assert shoot_readiness(obj).ready
    obj["status"]["conditions"][0]["status"] = "False"
    r = shoot_readiness(obj)
    assert not r.ready and "EveryNodeReady=False" in r.summary()
    obj["status"]["lastOperation"]["state"] = "Failed"
    assert shoot_readiness(obj).failed


def test_maintenance_windows() -> None:
    t = datetime(2026, 11, 21, 22, 30, tzinfo=UTC)
    assert in_maintenance_window(t, "220000+0000", "230000+0000")
    assert not in_maintenance_window(t, "230000+0000", "010000+0000")
    assert in_maintenance_window(t.replace(hour=0), "230000+0000", "010000+0000")
    assert in_maintenance_window(t, "230000+0100", "000000+0100")  # 22:00-23:00 UTC
    assert seconds_until_window(t, "230000+0000", "010000+0000") == 1800


def test_manifest_and_input_validation() -> None:
    c = ClusterSpec(
        name="edge-1",
        cloud_profile="local",
        region="local",
        credentials_binding="b",
        provider_type="local",
        kubernetes_version="1.30.8",
        workers=[{"name": "pool1", "machine_type": "local-small", "image_version": "1877.3.0"}],
    )
    m = shoot_manifest(c)
    assert m["spec"]["cloudProfile"]["name"] == "local"
    assert m["spec"]["provider"]["workers"][0]["machine"]["image"] == {
        "name": "gardenlinux",
        "version": "1877.3.0",
    }
    with pytest.raises(ValidationError, match="Kubernetes version"):
        ClusterSpec.model_validate({**c.model_dump(), "kubernetes_version": "latest"})
    with pytest.raises(ValidationError, match="DNS label"):
        ClusterSpec.model_validate({**c.model_dump(), "name": "Edge_1"})
    with pytest.raises(ValidationError):
        ClusterSpec.model_validate({**c.model_dump(), "workers": []})
