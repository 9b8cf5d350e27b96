"""A promotion of several components as one release: what the definition accepts, and bad releases refused
before anything starts, each with its field path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from definitions.promotion import PromotionDefinitionError, PromotionRunArgs, validate_promotion
from tests.unit.promotion.samples import BASE
from workers.cli import main

A, B = "example.apeiro.dev/edge-app", "example.apeiro.dev/edge-api"


def release(*components: dict[str, str], **extra: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    del data["spec"]["artifact"]
    data["spec"]["release"] = {"vector": "example.apeiro.dev/edge-release", "repository": "http://127.0.0.1:5000",
                               "components": list(components), **extra}
    return data


def problems(data: object) -> list[tuple[str, str]]:
    with pytest.raises(PromotionDefinitionError) as info:
        validate_promotion(data)
    return info.value.problems


def test_a_release_pins_several_components_behind_one_vector() -> None:
    p = validate_promotion(release({"component": A, "version": "1.4.0"}, {"component": B, "version": "2.1.0"}))
    assert p.spec.pins("2026.12.1") == {A: "1.4.0", B: "2.1.0"}
    assert p.spec.subject.component == "example.apeiro.dev/edge-release"  # what every Stage points at
    single = validate_promotion(BASE)
    assert single.spec.pins("1.0.0") == {"example.apeiro.dev/edge-app": "1.0.0"}
    assert single.spec.subject == single.spec.artifact


def test_the_same_component_twice_is_refused_with_its_path() -> None:
    found = problems(release({"component": A, "version": "1.4.0"}, {"component": B, "version": "2.1.0"},
                             {"component": A, "version": "1.5.0"}))
    assert found == [("spec.release.components[2].component",
                      f"component {A!r} is pinned twice (also spec.release.components[0]); a release pins each "
                      "component once")]


def test_an_empty_release_is_refused_with_its_path() -> None:
    assert problems(release()) == [("spec.release.components", "List should have at least 1 item after "
                                                                "validation, not 0")]


def test_artifact_and_release_are_exclusive() -> None:
    both = release({"component": A, "version": "1.0.0"})
    both["spec"]["artifact"] = {"component": A}
    assert problems(both) == [("spec.release", "give artifact or release, not both")]
    neither = copy.deepcopy(BASE)
    del neither["spec"]["artifact"]
    assert problems(neither)[0][0] == "spec.release"


def test_component_names_and_versions_are_checked() -> None:
    found = problems(release({"component": "edge-app", "version": "1.0.0"}, {"component": B, "version": "two words"}))
    assert [p for p, _ in found] == ["spec.release.components.0.component", "spec.release.components.1.version"]


def test_step_repository_fills_the_release_vector_repository() -> None:
    p = validate_promotion(release({"component": A, "version": "1.0.0"}, repository=""))
    args = PromotionRunArgs(promotion=p, version="2026.12.1", repository="https://registry.site/ocm")
    assert args.promotion.spec.subject.repository == "https://registry.site/ocm"


def test_cli_start_refuses_a_bad_release_before_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "release.yaml"
    f.write_text(yaml.safe_dump(release({"component": A, "version": "1.0.0"}, {"component": A, "version": "1.1.0"})))
    assert main(["promote", "start", str(f), "2026.12.1"]) == 1
    assert "spec.release.components[1].component" in capsys.readouterr().out
    f.write_text(yaml.safe_dump(release()))
    assert main(["promote", "validate", str(f)]) == 1
    assert "spec.release.components: List should have at least 1 item" in capsys.readouterr().out


def test_status_names_the_release_components() -> None:
    from definitions.promotion_runs import PromotionStatus, RingAttempt, RunState
    from workers.cli.promote import format_status

    st = PromotionStatus(pipeline="edge", version="2026.12.1", state=RunState.RUNNING, rings=[
        RingAttempt(ring="dev", attempt=1, version="2026.12.1", sequence=1, components={A: "1.4.0", B: "2.1.0"})])
    assert f"release: {B} 2.1.0, {A} 1.4.0" in format_status(st)


def test_landscape_waves_expand_into_one_ring_a_wave_canary_first() -> None:
    data = release({"component": A, "version": "1.4.0"}, {"component": B, "version": "2.1.0"})
    del data["spec"]["rings"]
    data["spec"]["landscapeWaves"] = {
        "landscapes": ["canary-eu", "eu-1", "eu-2", "us-1", "us-2"], "stage": "edge", "namespace": "apps",
        "waves": [1, "60%", "100%"], "maxInFlight": 2,
        "entryGates": [{"type": "approval", "approvers": ["bob"]}], "verifyGates": [{"type": "soak", "duration": "1h"}]}
    p = validate_promotion(data)
    assert [(r.name, [t.landscape for t in r.targets]) for r in p.spec.rings] == [
        ("canary", ["canary-eu"]), ("wave-1", ["eu-1", "eu-2"]), ("wave-2", ["us-1", "us-2"])]
    assert [len(r.entry_gates) for r in p.spec.rings] == [0, 1, 1]  # the gate sits between waves
    assert all(r.parallelism == 2 and r.verify_gates[0].type == "soak" for r in p.spec.rings)
    # the expanded definition is what the workflow receives: it validates again unchanged
    assert validate_promotion(p.model_dump(mode="json", by_alias=True)).spec.rings == p.spec.rings
    both = copy.deepcopy(data)
    both["spec"]["rings"] = BASE["spec"]["rings"]
    assert problems(both) == [("spec.landscapeWaves", "give rings or landscapeWaves, not both")]
    bad = copy.deepcopy(data)
    bad["spec"]["landscapeWaves"].update(landscapes=["eu-1", "eu-1"], waves=[0])
    assert problems(bad) == [("spec.landscapeWaves.landscapes", "landscape(s) listed twice: eu-1"),
                             ("spec.landscapeWaves.waves", "a wave is a count >= 1 or a percentage like '25%', got 0")]
