"""The definition model, inputs, durations, the library and graph rendering."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from definitions.catalog import load_catalog
from definitions.durations import format_duration, parse_duration
from definitions.graph import to_dot, to_mermaid
from definitions.library import EXAMPLES, PipelineLibrary
from definitions.pipeline import Pipeline
from definitions.validate import DefinitionError, check_inputs, load_yaml, parse_pipeline, validate_definition
from tests.support import pipeline


def edge_site() -> dict:
    return load_yaml((EXAMPLES / "edge-site.yaml").read_text())


def test_edge_site_is_valid_and_uses_every_engine_feature() -> None:
    p, inputs = validate_definition(edge_site(), load_catalog(), inputs={
        "serverSite": {"name": "edge-demo-1", "bmcs": [{"url": "http://127.0.0.1:8000",
                                                         "credentials": {"username": "admin",
                                                                         "password_ref": "env:BMC_PASSWORD"}}]},
        "gardenLinuxImage": {"url": "http://127.0.0.1:8001/gardenlinux.iso", "sha256": "0" * 64}})
    uses = {s.uses for s in p.spec.steps}
    assert {"core.approval", "core.wait"} <= uses
    assert any(s.for_each is not None for s in p.spec.steps)
    assert any(s.when for s in p.spec.steps)
    roots_after_plan = [s.name for s in p.spec.steps if s.needs == ["plan"]]
    assert {"server.discover", "cluster.create", "component.transport"} <= uses
    assert len(roots_after_plan) >= 2, "parallel branches"
    assert inputs["site"] == "edge-demo-1"


def test_model_round_trips_through_json() -> None:
    p = parse_pipeline(edge_site())
    again = Pipeline.model_validate_json(p.model_dump_json(by_alias=True))
    assert again == p


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("1h30m", 5400), ("2d", 172800),
                                                ("500ms", 0.5), (45, 45)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["5 minutes", "m", "", "1x", -1, True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration() -> None:
    assert format_duration(timedelta(seconds=5400)) == "1h30m"


def test_inputs_defaults_types_enums_and_unknown_names() -> None:
    p = parse_pipeline(pipeline(
        [{"name": "a", "uses": "core.echo"}],
        inputs={"site": {"type": "string"}, "count": {"type": "integer", "default": 2},
                "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
                "hosts": {"type": "array", "items": "string", "default": []}},
    ))
    resolved, problems = check_inputs(p, {"site": "x"})
    assert problems == [] and resolved == {"site": "x", "count": 2, "mode": "safe", "hosts": []}

    _, problems = check_inputs(p, {"count": "3", "mode": "yolo", "sitee": "x", "hosts": ["a", 1]})
    text = [str(x) for x in problems]
    assert "inputs.sitee: the pipeline declares no input 'sitee' (did you mean 'site'?)" in text
    assert "inputs.site: required input is missing (string)" in text
    assert "inputs.count: must be an integer, got str '3'" in text
    assert "inputs.mode: 'yolo' is not one of ['fast', 'safe']" in text
    assert "inputs.hosts[1]: must be a string, got int 1" in text


def test_boolean_is_not_an_integer() -> None:
    p = parse_pipeline(pipeline([{"name": "a", "uses": "core.echo"}], inputs={"n": {"type": "integer"}}))
    _, problems = check_inputs(p, {"n": True})
    assert [str(x) for x in problems] == ["inputs.n: must be an integer, got bool True"]


def test_every_problem_is_reported_not_just_the_first() -> None:
    data = pipeline([
        {"name": "a", "uses": "core.nope"},
        {"name": "b", "uses": "core.echo", "needs": ["zzz"], "when": "inputs.x"},
    ])
    with pytest.raises(DefinitionError) as info:
        validate_definition(data, load_catalog())
    assert len(info.value.problems) == 3


def test_not_a_mapping() -> None:
    with pytest.raises(DefinitionError, match="must be a mapping"):
        parse_pipeline(["a"])


def test_library_finds_named_pipelines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.yaml").write_text("apiVersion: apeiro.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: mine}\n"
                                     "spec: {steps: [{name: a, uses: core.echo}]}\n")
    (tmp_path / "broken.yaml").write_text(":\n  - [")
    lib = PipelineLibrary([tmp_path, EXAMPLES])
    assert {"mine", "edge-site"} <= set(lib.names())
    assert lib.load("mine")["metadata"]["name"] == "mine"
    with pytest.raises(DefinitionError, match="no pipeline named 'nope'"):
        lib.load("nope")


def test_library_parses_a_file_again_only_once_it_changed(tmp_path: Path) -> None:
    import definitions.library as library

    x = tmp_path / "x.yaml"
    x.write_text("apiVersion: apeiro.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: mine}\n"
                 "spec: {steps: [{name: a, uses: core.echo}]}\n")
    (tmp_path / "broken.yaml").write_text(":\n  - [")
    assert set(PipelineLibrary([tmp_path]).call_graph()) == {"mine"}
    first = library._PARSED[x][1]
    again = PipelineLibrary([tmp_path])
    assert set(again.call_graph()) == {"mine"} and library._PARSED[x][1] is first  # not parsed again
    assert [p.name for p in again.skipped] == ["broken.yaml"]  # a skipped file is still reported
    x.write_text("apiVersion: apeiro.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: renamed}\n"
                 "spec: {steps: [{name: a, uses: core.pipeline, with: {pipeline: mine}}]}\n")
    assert PipelineLibrary([tmp_path]).call_graph() == {"renamed": {"mine"}}


def test_mermaid_and_dot_show_every_edge() -> None:
    p = parse_pipeline(edge_site())
    mermaid, dot = to_mermaid(p), to_dot(p)
    assert mermaid.startswith("flowchart TD")
    for step in p.spec.steps:
        for dep in step.needs:
            assert f"  {dep} --> {step.name}" in mermaid
            assert f'"{dep}" -> "{step.name}"' in dot


def test_with_arguments_holding_expressions_are_checked_at_run_time_only() -> None:
    data = pipeline([{"name": "w", "uses": "core.wait", "with": {"duration": "${{ inputs.d }}"}}],
                    inputs={"d": {"type": "string", "default": "1s"}})
    validate_definition(data, load_catalog())  # no error: the value is only known at run time


def test_subpipeline_must_exist_when_the_library_is_known() -> None:
    data = pipeline([{"name": "s", "uses": "core.pipeline", "with": {"pipeline": "ghost"}}])
    with pytest.raises(DefinitionError, match=r"spec.steps\[0\].with.pipeline: no pipeline named 'ghost'"):
        validate_definition(data, load_catalog(), known_pipelines=["edge-site"])
