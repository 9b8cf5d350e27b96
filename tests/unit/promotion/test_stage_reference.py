"""Stage vectors as Konfidence defines them: OCM references, and readiness read from the Stage."""

from __future__ import annotations

from typing import Any

import pytest

from definitions.stage import VectorReferenceError, last_verified, parse_vector, readiness, vector_ref

REF = "registry.example/ocm//example.org/app:1.2.0"


@pytest.mark.parametrize(
    ("ref", "repository", "component", "version"),
    [
        (REF, "registry.example/ocm", "example.org/app", "1.2.0"),
        (
            "https://registry.kdenv.lab/ocm/vector//common.konfidence.cloud/example/vector:0.0.1",
            "https://registry.kdenv.lab/ocm/vector",
            "common.konfidence.cloud/example/vector",
            "0.0.1",
        ),
        (
            "http://127.0.0.1:5000/ocm//example.apeiro.dev/edge-app:1.0.0+build.7",
            "http://127.0.0.1:5000/ocm",
            "example.apeiro.dev/edge-app",
            "1.0.0+build.7",
        ),
        ("OCIRepository::ghcr.io/org//github.com/org/app:latest", "ghcr.io/org", "github.com/org/app", "latest"),
    ],
)
def test_references_parse(ref: str, repository: str, component: str, version: str) -> None:
    parsed = parse_vector(ref)
    assert (parsed.repository, parsed.component, parsed.version) == (repository, component, version)


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("", "empty"),
        ("example.org/app:1.0.0", "no repository"),
        ("registry.example//example.org/app", "no version"),
        ("registry.example//App:1.0", "not an OCM component name"),
        ("registry.example//example.org/app:1 0", "not a version"),
        ("//example.org/app:1.0", "no repository"),
    ],
)
def test_bad_references_say_what_is_wrong(ref: str, why: str) -> None:
    with pytest.raises(VectorReferenceError, match=why):
        parse_vector(ref)


def test_vector_ref_builds_and_needs_a_repository() -> None:
    assert vector_ref("registry.example/ocm/", "example.org/app", "1.2.0").reference == REF
    with pytest.raises(VectorReferenceError, match=r"artifact\.repository"):
        vector_ref("", "example.org/app", "1.2.0")


def stage(generation: int, vector: str, conds: dict[str, tuple[str, str, int]], history: list[str]) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"vector": vector},
        "status": {
            "vectorHistory": history,
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": "m", "observedGeneration": g}
                for t, (s, r, g) in conds.items()
            ],
        },
    }


OK = {"VectorDeployed": ("True", "VectorDeployed", 2), "Ready": ("True", "Ready", 2)}


def test_ready_needs_both_conditions_for_the_generation_and_the_history_entry() -> None:
    assert readiness(stage(2, REF, OK, [REF]), REF, 2).state == "ready"
    assert readiness(stage(2, REF, OK, []), REF, 2).state == "progressing"  # not yet in vectorHistory
    old = {"VectorDeployed": ("True", "VectorDeployed", 1), "Ready": ("True", "Ready", 1)}
    state = readiness(stage(2, REF, old, [REF]), REF, 2)
    assert state.state == "progressing" and state.reason == "NotObserved"
    half = {**OK, "Ready": ("False", "Progressing", 2)}
    assert readiness(stage(2, REF, half, [REF]), REF, 2).state == "progressing"
    assert readiness({"metadata": {"generation": 1}, "spec": {"vector": REF}}, REF, 1).reason == "NoConditions"


def test_failed_deployment_and_replaced_vector() -> None:
    failed = {"VectorDeployed": ("False", "ArtifactDeploymentFailed", 2), "Ready": ("False", "X", 2)}
    state = readiness(stage(2, REF, failed, []), REF, 2)
    assert state.state == "failed" and state.reason == "ArtifactDeploymentFailed"
    other = REF.replace("1.2.0", "9.9.9")
    assert readiness(stage(3, other, OK, [REF]), REF, 2).state == "replaced"


def test_last_verified_picks_the_newest_matching_entry() -> None:
    v1, v2 = REF.replace("1.2.0", "1.0.0"), REF
    moved = "mirror.example//example.org/app:1.0.0"
    obj = stage(3, v2, OK, [v1, v2, moved, "garbage"])
    assert last_verified(obj) == moved
    assert last_verified(obj, "example.org/app", "1.0.0") == moved
    assert last_verified(obj, "example.org/other") is None
