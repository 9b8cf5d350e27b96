"""The controller's decisions without a server: plans, ids, status mapping, conditions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from definitions.catalog import load_catalog
from definitions.mesh import kind_named
from definitions.runs import PipelineStatus, RunState, StepState, StepStatus
from definitions.validate import validate_definition
from workers.mesh import orders

PIPELINE = {
    "apiVersion": "apeiro.dev/v1alpha1",
    "kind": "Pipeline",
    "metadata": {"name": "p"},
    "spec": {
        "inputs": {"site": {"type": "string"}, "n": {"type": "integer", "default": 1}},
        "steps": [{"name": "a", "uses": "core.echo", "with": {"values": {"s": "${{ inputs.site }}"}}}],
    },
}


def load(name: str) -> dict[str, Any]:
    if name != "p":
        raise KeyError(f"unknown pipeline {name!r}")
    return PIPELINE


def validate(data: dict[str, Any], inputs: dict[str, Any]) -> Any:
    return validate_definition(data, load_catalog(), inputs=inputs)


def test_workflow_id_is_deterministic() -> None:
    k = kind_named("PipelineRun")
    assert orders.workflow_id("abc", k, "u-1") == orders.workflow_id("abc", k, "u-1") == "mesh-abc-pipelinerun-u-1"
    assert orders.workflow_id("abd", k, "u-1") != orders.workflow_id("abc", k, "u-1")


def test_plan_for_a_pipeline_run() -> None:
    plan = orders.plan(kind_named("PipelineRun"), {"pipeline": "p", "inputs": {"site": "x"}}, load, validate)
    assert plan.problems == [] and plan.inputs == {"site": "x", "n": 1} and plan.pipeline == "p"


@pytest.mark.parametrize(
    ("spec", "paths"),
    [
        ({"pipeline": "nope"}, ["spec.pipeline"]),
        ({"pipeline": "p", "inputs": {"n": "x"}}, ["spec.inputs.site", "spec.inputs.n"]),
        ({"pipeline": "p", "inputs": {"site": "x", "zz": 1}}, ["spec.inputs.zz"]),
    ],
)
def test_bad_orders_name_each_field(spec: dict[str, Any], paths: list[str]) -> None:
    plan = orders.plan(kind_named("PipelineRun"), spec, load, validate)
    assert sorted(p.path for p in plan.problems) == sorted(paths)


def test_lifecycle_kind_is_a_one_step_pipeline_with_field_paths_of_the_spec() -> None:
    kind = kind_named("ClusterUpgrade")
    ok = orders.plan(kind, {"name": "shoot-1", "approvals": []}, load, validate)
    assert ok.problems == [] and ok.definition is not None
    assert ok.definition["spec"]["steps"][0] == {"name": "run", "uses": "cluster.upgrade", "with": {"name": "shoot-1"}}
    bad = orders.plan(kind, {"name": "s", "confined_rollout": "later"}, load, validate)
    assert [p.path for p in bad.problems] == ["spec.confined_rollout"]


def test_spec_hash_ignores_approvals() -> None:
    a = {"pipeline": "p", "inputs": {"x": 1}}
    assert orders.spec_hash(a) == orders.spec_hash({**a, "approvals": [{"step": "g", "approver": "x"}]})
    assert orders.spec_hash(a) != orders.spec_hash({**a, "inputs": {"x": 2}})


def _run(*states: tuple[str, str, StepState]) -> PipelineStatus:
    steps = [StepStatus(name=n, uses=u, state=s, started_at=datetime(2026, 1, 1, tzinfo=UTC)) for n, u, s in states]
    return PipelineStatus(pipeline="p", workflow_id="w", state=RunState.RUNNING, steps=steps)


def test_status_mapping_and_conditions_keep_their_transition_time() -> None:
    run = _run(("a", "core.echo", StepState.SUCCEEDED), ("gate", "core.approval", StepState.WAITING))
    kw = dict(wf_id="w", run_id="r1", generation=2, started_from="h", refused=[], approvals_sent=0, edited=False)
    first = orders.order_status({}, execution="RUNNING", run=run, **kw)  # type: ignore[arg-type]
    assert first["phase"] == "AwaitingApproval" and first["runId"] == "r1"
    conds = {c["type"]: c for c in first["conditions"]}
    assert conds["AwaitingApproval"]["status"] == "True" and conds["AwaitingApproval"]["message"] == "gate"
    assert conds["Succeeded"]["status"] == "Unknown" and conds["Ready"]["observedGeneration"] == 2
    old = {**first, "conditions": [{**c, "lastTransitionTime": "2020-01-01T00:00:00Z"} for c in first["conditions"]]}
    done = orders.order_status(old, execution="COMPLETED", run=run, **{**kw, "run_id": "r2"})  # type: ignore[arg-type]
    dconds = {c["type"]: c for c in done["conditions"]}
    assert done["phase"] == "Succeeded" and done["runId"] == "r2"  # a continued-as-new run is followed
    assert dconds["Ready"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"  # unchanged status keeps its time
    assert (
        dconds["Succeeded"]["status"] == "True" and dconds["Succeeded"]["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    )
    edited = orders.order_status(first, execution="RUNNING", run=run, **{**kw, "edited": True})  # type: ignore[arg-type]
    assert any(c["type"] == "SpecApplied" and c["reason"] == "SpecChangeIgnored" for c in edited["conditions"])
    refused = orders.order_status(first, execution="RUNNING", run=run, **{**kw, "refused": ["gate by bob: no"]})  # type: ignore[arg-type]
    assert {c["type"]: c for c in refused["conditions"]}["ApprovalAccepted"]["message"] == "gate by bob: no"


@pytest.mark.parametrize(
    ("execution", "phase"),
    [("FAILED", "Failed"), ("CANCELED", "Cancelled"), ("TERMINATED", "Failed"), ("TIMED_OUT", "Failed")],
)
def test_closed_runs(execution: str, phase: str) -> None:
    assert orders.phase_of(execution, None).value == phase


def test_transitions() -> None:
    old = [{"name": "a", "state": "running"}, {"name": "b", "state": "pending"}]
    new = [{"name": "a", "state": "succeeded"}, {"name": "b", "state": "pending"}, {"name": "c", "state": "pending"}]
    assert [s["name"] for s in orders.transitions(old, new)] == ["a", "c"]
