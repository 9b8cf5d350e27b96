"""`fleet.rollout` input: waves, budget and the checks made before start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from definitions.catalog import load_catalog
from definitions.rollout import Rollout, RolloutInput


def test_cumulative_waves_and_budget() -> None:
    r = Rollout.model_validate({"selector": {}, "waves": [1, "25%", "100%"], "failureBudget": "10%"})
    names = [f"s{i:02}" for i in range(40)]
    assert [len(w) for w in r.plan(names)] == [1, 9, 30] and r.plan(names)[0] == ["s00"]
    assert r.budget(40) == 4
    # what the boundaries leave out forms a final wave; boundaries past the total collapse
    assert Rollout.model_validate({"selector": {}, "waves": [2, 10]}).plan(["a", "b", "c"]) == [["a", "b"], ["c"]]
    assert Rollout.model_validate({"selector": {}, "waves": ["50%"]}).plan(["a", "b", "c"]) == [["a", "b"], ["c"]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"operation": "cluster.delete"}, "cannot run in waves"),
        ({"with": {"bogus": 1}}, "with.bogus"),
        ({"with": {"enabled": True, "name": "x"}}, "set per target"),
        ({"rollout": {"selector": {}, "waves": [0]}}, "count >= 1"),
        ({"rollout": {"selector": {}, "failureBudget": "lots"}}, "failureBudget"),
        # gates between waves are the promotion's, checked as the promotion checks them
        ({"rollout": {"selector": {}, "gates": [{"type": "testSuite", "url": "x"}]}}, "does not match any"),
        ({"rollout": {"selector": {}, "gates": [{"type": "timeWindow", "calendar": "biz"}]}},
         r"gates\[0\]\.calendar: unknown calendar 'biz'"),
        ({"rollout": {"selector": {}, "gates": [{"type": "prometheus", "query": "up", "successCondition": "true"}]}},
         r"rollout\.gates\[0\]\.address: no Prometheus address"),
        ({"rollout": {"selector": {}, "defaults": {"prometheus": "http://p:9090"},
                      "gates": [{"type": "prometheus", "query": "sum(", "successCondition": "result < 1"}]}},
         r"gates\[0\]\.query: unparsable PromQL"),
        ({"rollout": {"selector": {}, "gates": [{"type": "httpProbe", "url": "http://x", "condition": "body.("}]}},
         r"gates\[0\]\.condition"),
        ({"rollout": {"selector": {}, "gates": [{"type": "soak", "duration": "1s"}, {"type": "soak", "duration": "2s",
                                                                                     "name": "soak-1"}]}},
         "duplicate gate name"),
    ],
)
def test_refused_before_start(change: dict[str, object], message: str) -> None:
    data = {"operation": "cluster.hibernate", "with": {"enabled": True}, "rollout": {"selector": {}}, **change}
    with pytest.raises(ValidationError, match=message):
        RolloutInput.model_validate(data)


def test_registered_as_a_workflow_step() -> None:
    step = load_catalog().get("fleet.rollout")
    assert step.target == "FleetRolloutWorkflow" and step.args_model is RolloutInput


def test_every_promotion_gate_type_between_waves() -> None:
    r = Rollout.model_validate(
        {
            "selector": {},
            "calendars": {"business": {"timeZone": "Europe/Berlin", "allow": [{"days": ["MO"], "start": "08:00"}]}},
            "defaults": {"prometheus": "http://prometheus:9090", "gateTimeout": "2h", "errorRetries": 1},
            "gates": [
                {"type": "soak", "duration": "10m"},
                {"type": "prometheus", "query": "sum(rate(x[5m]))", "successCondition": "result < 0.05", "count": 2},
                {"type": "httpProbe", "url": "https://canary.example/healthz", "condition": 'body.status == "ok"'},
                {"type": "timeWindow", "calendar": "business"},
                {"type": "approval", "approvers": ["bob", "carol"], "quorum": 2},
            ],
        }
    )
    assert [g.type for g in r.gates] == ["soak", "prometheus", "httpProbe", "timeWindow", "approval"]
    assert r.gates[4].message == "approve the next wave"  # type: ignore[union-attr]


def test_prometheus_address_from_the_step() -> None:
    gate = {"type": "prometheus", "query": "up", "successCondition": "result > 0"}
    inp = RolloutInput.model_validate(
        {"operation": "cluster.hibernate", "with": {"enabled": True}, "prometheus": "http://p:9090",
         "rollout": {"selector": {}, "gates": [gate]}}
    )
    assert inp.rollout.defaults.prometheus == "http://p:9090"


def test_the_fleet_page_examples_validate() -> None:
    """docs/fleet.md's `fleet.rollout` step and its gates example are what the model accepts."""
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[3] / "docs" / "fleet.md").read_text()
    checked = 0
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        data = yaml.safe_load(block)
        if isinstance(data, list) and data and data[0].get("uses") == "fleet.rollout":
            args = data[0]["with"]
            if any(isinstance(v, str) and "${{" in v for v in args.values()):
                Rollout.model_validate(args["rollout"])  # a pipeline value fills the rest at run time
            else:
                RolloutInput.model_validate(args)
            checked += 1
        elif isinstance(data, dict) and "selector" in (data.get("rollout") or {}):
            assert len(Rollout.model_validate(data["rollout"]).gates) == 5
            checked += 1
    assert checked == 3  # the cluster step, the server step, the gates example
