"""Validation of promotion definitions: every bad input fails before a rollout starts, with its path."""

from __future__ import annotations

import copy

import pytest

from definitions.catalog import load_catalog
from definitions.promotion import (
    PrometheusGate,
    PromotionDefinitionError,
    PromotionPipeline,
    ring_gates,
    validate_promotion,
)
from tests.unit.promotion.samples import BASE, sample


def problems(data: object) -> list[tuple[str, str]]:
    with pytest.raises(PromotionDefinitionError) as info:
        validate_promotion(data)
    return info.value.problems


def test_sample_is_valid() -> None:
    p = validate_promotion(BASE)
    assert [r.name for r in p.spec.rings] == ["dev", "canary", "production"]
    assert p.upstream_of(1) == ["dev"]
    assert isinstance(p.spec.rings[1].verify_gates[0], PrometheusGate)
    assert [n for _, n, _ in ring_gates(p.spec.rings[2])] == ["approval", "timeWindow", "upstreamVerified"]


def test_duplicate_ring() -> None:
    rings = copy.deepcopy(BASE["spec"]["rings"])
    rings[2]["name"] = "dev"
    found = problems(sample(rings=rings))
    assert ("spec.rings[2].name", "duplicate ring 'dev' (also spec.rings[0])") in found


def test_unknown_upstream_ring() -> None:
    rings = copy.deepcopy(BASE["spec"]["rings"])
    rings[1]["upstream"] = ["staging"]
    found = problems(sample(rings=rings))
    assert found[0][0] == "spec.rings[1].upstream[0]"
    assert "unknown upstream ring 'staging'" in found[0][1]


def test_upstream_must_come_before() -> None:
    rings = copy.deepcopy(BASE["spec"]["rings"])
    rings[0]["upstream"] = ["production"]
    assert problems(sample(rings=rings))[0][0] == "spec.rings[0].upstream[0]"


def test_unparsable_promql() -> None:
    rings = copy.deepcopy(BASE["spec"]["rings"])
    rings[1]["verifyGates"][0]["query"] = "sum(rate(http_requests_total[1m])"
    found = problems(sample(rings=rings))
    assert found == [("spec.rings[1].verifyGates[0].query", "unparsable PromQL: unclosed left parenthesis")]


def test_bad_success_condition() -> None:
    rings = copy.deepcopy(BASE["spec"]["rings"])
    rings[1]["verifyGates"][0]["successCondition"] = "result <"
    assert problems(sample(rings=rings))[0][0] == "spec.rings[1].verifyGates[0].successCondition"


def test_unknown_calendar_and_gate_type() -> None:
    rings = copy.deepcopy(BASE["spec"]["rings"])
    rings[2]["entryGates"][1]["calendar"] = "weekend"
    assert problems(sample(rings=rings))[0][0] == "spec.rings[2].entryGates[1].calendar"
    rings = copy.deepcopy(BASE["spec"]["rings"])
    rings[0]["verifyGates"][0] = {"type": "sleep", "duration": "1m"}
    assert problems(sample(rings=rings))[0][0].startswith("spec.rings.0.verifyGates.0")


def test_quorum_and_duplicate_gates() -> None:
    rings = copy.deepcopy(BASE["spec"]["rings"])
    rings[2]["entryGates"][0]["quorum"] = 3
    assert "quorum 3 exceeds" in problems(sample(rings=rings))[0][1]
    rings = copy.deepcopy(BASE["spec"]["rings"])
    rings[0]["verifyGates"] = [{"type": "soak", "duration": "1m", "name": "x"},
                               {"type": "soak", "duration": "2m", "name": "x"}]
    assert "duplicate gate name 'x'" in problems(sample(rings=rings))[0][1]


def test_window_needs_zone_and_hhmm() -> None:
    cal = {"business": {"allow": [{"start": "8:00"}]}}
    assert problems(sample(calendars=cal))[0][0].startswith("spec.calendars.business.allow.0.start")
    cal = {"freeze": {"deny": [{"from": "2026-12-20T00:00:00"}]}}
    assert "time zone" in problems(sample(calendars=cal))[0][1]


def test_step_type_registered_and_args_check_promql() -> None:
    step = load_catalog().get("promotion.run")
    assert step.task_queue == "konfidence"
    bad = copy.deepcopy(BASE)
    bad["spec"]["rings"][1]["verifyGates"][0]["query"] = "rate(x[1m]"
    with pytest.raises(ValueError, match="unparsable PromQL"):
        step.args_model.model_validate({"promotion": bad, "version": "1.0.0"})
    assert isinstance(step.args_model.model_validate({"promotion": BASE, "version": "1.0.0"}).promotion,
                      PromotionPipeline)
