"""Issue 17: the limits of definitions/limits.py are checked before start, with the limit in the message."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
import temporalio.workflow

from definitions import limits
from definitions.catalog import load_catalog
from definitions.expressions import ExpressionError, evaluate
from definitions.library import PipelineLibrary
from definitions.validate import DefinitionError, validate_definition
from tests.support import pipeline
from workflows.user_errors import USER_DATA_ERRORS

CATALOG = load_catalog()


def problems(data: Any, inputs: dict[str, Any] | None = None, known: Any = None) -> str:
    with pytest.raises(DefinitionError) as info:
        validate_definition(data, CATALOG, inputs=inputs, known_pipelines=known)
    return str(info.value)


def echo(name: str = "a", **extra: Any) -> dict[str, Any]:
    return {"name": name, "uses": "core.echo", **extra}


def test_a_5_mb_definition_is_refused_with_the_size_limit() -> None:
    big = pipeline([echo(values={"blob": "x" * 5_000_000})], name="big")
    big["spec"]["steps"][0] = {"name": "a", "uses": "core.echo", "with": {"values": {"blob": "x" * 5_000_000}}}
    assert "over the limit of 512 KiB" in problems(big)


def test_too_many_steps_are_refused_with_the_limit() -> None:
    steps = [echo(f"s{i}") for i in range(limits.MAX_STEPS + 1)]
    assert f"{limits.MAX_STEPS + 1} steps, over the limit of {limits.MAX_STEPS}" in problems(pipeline(steps))
    validate_definition(pipeline(steps[: limits.MAX_STEPS]), CATALOG)  # the limit itself is fine


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, json.loads("1e400"), 2**63, -(2**63) - 1, 10**5000],
    ids=["nan", "inf", "-inf", "1e400", "2**63", "-2**63-1", "10**5000"],
)
def test_inputs_outside_int64_or_not_finite_are_refused_with_the_path(value: Any) -> None:
    definition = pipeline([echo()], inputs={"x": {"type": "number", "default": 1}})
    text = problems(definition, inputs={"x": value})
    assert "inputs.x" in text and ("64-bit" in text or "not a finite number" in text), text


def test_defaults_and_literals_outside_int64_are_refused() -> None:
    definition = pipeline(
        [echo(**{"with": {"values": {"n": 2**64}}})], inputs={"x": {"type": "integer", "default": -(2**70)}}
    )
    text = problems(definition, inputs={})
    assert "spec.inputs.x.default" in text and "spec.steps[0].with.values.n" in text, text


def test_int64_bounds_themselves_are_accepted() -> None:
    definition = pipeline([echo()], inputs={"x": {"type": "integer"}})
    validate_definition(definition, CATALOG, inputs={"x": 2**63 - 1})
    validate_definition(definition, CATALOG, inputs={"x": -(2**63)})


@pytest.mark.parametrize("timeout", ["99999999999d", 1e308, "P99999999D", "3661d"])
def test_durations_beyond_the_limit_are_refused_with_the_limit(timeout: Any) -> None:
    text = problems(pipeline([echo(timeout=timeout)]))
    assert "spec.steps[0].timeout" in text and "3660 days" in text, text


def test_wait_duration_literal_beyond_the_limit_is_refused() -> None:
    text = problems(pipeline([{"name": "w", "uses": "core.wait", "with": {"duration": "99999999999d"}}]))
    assert "spec.steps[0].with.duration" in text and "3660 days" in text, text


def test_a_cycle_through_any_chain_of_sub_pipelines_is_found_at_validation() -> None:
    def calling(name: str, target: str) -> dict[str, Any]:
        return pipeline([{"name": "call", "uses": "core.pipeline", "with": {"pipeline": target}}], name=name)

    graph = {"rec-a": {"rec-b"}, "rec-b": {"rec-c"}, "rec-c": {"rec-a"}, "leaf": set()}
    text = problems(calling("rec-a", "rec-b"), known=graph)
    assert "rec-a -> rec-b -> rec-c -> rec-a" in text and "spec.steps[0].with.pipeline" in text, text
    validate_definition(calling("top", "leaf"), CATALOG, known_pipelines=graph)  # no cycle: fine


def test_library_call_graph_feeds_the_cycle_check(tmp_path: Path) -> None:
    for name, target in (("rec-a", "rec-b"), ("rec-b", "rec-a")):
        (tmp_path / f"{name}.yaml").write_text(
            json.dumps(pipeline([{"name": "call", "uses": "core.pipeline", "with": {"pipeline": target}}], name=name))
        )
    library = PipelineLibrary([tmp_path])
    assert library.call_graph() == {"rec-a": {"rec-b"}, "rec-b": {"rec-a"}}
    assert "rec-a -> rec-b -> rec-a" in problems(library.load("rec-a"), known=library.call_graph())


def test_cel_cost_is_metered_while_evaluating() -> None:
    nested = "1"
    for var in "abcdef":  # six nested maps over 10 items: 10^6 elements
        nested = f"[0,1,2,3,4,5,6,7,8,9].map({var}, {nested})"
    with pytest.raises(ExpressionError, match=f"limit of {limits.MAX_CEL_COST} evaluation steps"):
        evaluate(f"size({nested})", {})
    assert evaluate("inputs.l.map(v, v * 2)[999]", {"inputs": {"l": list(range(1000))}}) == 1998


def test_cel_results_are_bounded_in_size() -> None:
    with pytest.raises(ExpressionError, match=f"more than {limits.MAX_CEL_RESULT_VALUES} values"):
        # Cheap to evaluate (the inner list is shared, ~5,000 steps), 160,000 values once converted.
        evaluate("inputs.l.map(a, inputs.l)", {"inputs": {"l": list(range(400))}})


def test_cel_integer_overflow_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="64"):
        evaluate("inputs.n + 1", {"inputs": {"n": 2**70}})


def test_library_skips_a_binary_or_deeply_nested_file_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good.yaml").write_text(json.dumps(pipeline([echo()], name="good")))
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "deep.yaml").write_text("[" * 5_000 + "]" * 5_000)
    (tmp_path / "huge.yaml").write_text("x: " + "y" * (2 * limits.MAX_DEFINITION_BYTES + 10))
    library = PipelineLibrary([tmp_path])
    with caplog.at_level(logging.WARNING, logger="definitions.library"):
        assert library.names() == ["good"]
        assert library.load("good")["metadata"]["name"] == "good"
    assert {p.name for p in library.skipped} == {"binary.yaml", "deep.yaml", "huge.yaml"}
    for name in ("binary.yaml", "deep.yaml", "huge.yaml"):
        assert any(name in r.getMessage() for r in caplog.records), name


def test_no_user_data_error_type_swallows_non_determinism() -> None:
    # Temporal's SDK fails the workflow on non-determinism when NondeterminismError is a subclass of a
    # listed type; those must keep failing the task (a deploy fixes them, not the data).
    assert not [t for t in USER_DATA_ERRORS if issubclass(temporalio.workflow.NondeterminismError, t)]
    for exc in (OverflowError(), ValueError(), KeyError(), RecursionError(), TypeError()):
        assert isinstance(exc, USER_DATA_ERRORS)
