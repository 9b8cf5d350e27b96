"""Issue 17: a trigger-started run is validated against the library's call graph, so a cycle through
any chain of core.pipeline (rec-a -> rec-b -> rec-a) is refused with 422 before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from definitions.library import PipelineLibrary
from definitions.triggers import NoAuth, Route, Rule, Target
from tests.support import pipeline
from triggers.dispatch import LibraryCache, Planner
from triggers.events import Event, HookError


def _write(tmp_path: Path, name: str, target: str) -> None:
    steps = [{"name": "call", "uses": "core.pipeline", "with": {"pipeline": target}}]
    (tmp_path / f"{name}.yaml").write_text(json.dumps(pipeline(steps, name=name)))


def _plan(tmp_path: Path, name: str) -> object:
    planner = Planner(LibraryCache(PipelineLibrary([tmp_path])))
    rule = Rule(name="go", target=Target(pipeline=name))
    route = Route(name="hook", source="pipeline", auth=NoAuth(), rules=[rule])
    return planner.plan(route, rule, Event(id="e1", data={}))


def test_a_cycle_through_two_pipelines_is_refused_at_planning(tmp_path: Path) -> None:
    _write(tmp_path, "rec-a", "rec-b")
    _write(tmp_path, "rec-b", "rec-a")
    with pytest.raises(HookError) as info:
        _plan(tmp_path, "rec-a")
    assert info.value.status == 422
    assert "rec-a -> rec-b -> rec-a" in str(info.value), info.value


def test_a_chain_without_a_cycle_is_planned(tmp_path: Path) -> None:
    _write(tmp_path, "top", "leaf")
    (tmp_path / "leaf.yaml").write_text(
        json.dumps(pipeline([{"name": "s", "uses": "core.log", "with": {"message": "x"}}], name="leaf"))
    )
    planned = _plan(tmp_path, "top")
    assert getattr(planned, "workflow", None) == "PipelineWorkflow"
