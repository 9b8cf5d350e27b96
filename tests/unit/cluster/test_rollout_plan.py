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
    ],
)
def test_refused_before_start(change: dict[str, object], message: str) -> None:
    data = {"operation": "cluster.hibernate", "with": {"enabled": True}, "rollout": {"selector": {}}, **change}
    with pytest.raises(ValidationError, match=message):
        RolloutInput.model_validate(data)


def test_registered_as_a_workflow_step() -> None:
    step = load_catalog().get("fleet.rollout")
    assert step.target == "FleetRolloutWorkflow" and step.args_model is RolloutInput
