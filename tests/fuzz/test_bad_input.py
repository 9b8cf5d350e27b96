"""Bad-input campaign: the definition loader and the CEL evaluator never crash with anything but
their own errors (DefinitionError / ExpressionError), whatever they are given."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from definitions.catalog import load_catalog
from definitions.expressions import ExpressionError, evaluate, evaluate_bool, references, render
from definitions.validate import DefinitionError, load_yaml, validate_definition
from tests.fuzz.strategies import any_cel, definition, json_values

pytestmark = pytest.mark.fuzz
CATALOG = load_catalog()
CONTEXT: dict[str, Any] = {
    "inputs": {"n": 3, "s": "x", "flag": True, "items": [1, 2]},
    "steps": {"a": {"outputs": {"v": 1, "n": [1, 2]}}},
    "item": 2,
}


def validate(data: Any) -> None:
    try:
        validate_definition(data, CATALOG, inputs={}, known_pipelines=["sub"])
    except DefinitionError as exc:
        assert exc.problems, "a DefinitionError must name at least one problem"


@given(st.text(max_size=300))
@example("[" * 3000)
@example("{" * 3000)
@example("a: &a [*a]")
@example(
    "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b ["
    + ",".join(["*a"] * 10)
    + "]\nc: &c ["
    + ",".join(["*b"] * 10)
    + "]\nd: &d ["
    + ",".join(["*c"] * 10)
    + "]\ne: &e ["
    + ",".join(["*d"] * 10)
    + "]\nf: ["
    + ",".join(["*e"] * 10)
    + "]"
)
@example("!!python/object/apply:os.system ['true']")
@example("a: 1\na: 2")
def test_yaml_loader_raises_only_definition_errors(text: str) -> None:
    try:
        data = load_yaml(text, "fuzz.yaml")
    except DefinitionError as exc:
        assert exc.problems
        return
    validate(data)


@given(definition())
def test_validation_of_generated_definitions_raises_only_definition_errors(data: dict[str, Any]) -> None:
    validate(data)
    # The same definition written as YAML text goes through the loader the CLI uses.
    try:
        again = load_yaml(yaml.safe_dump(data))
    except DefinitionError:
        return
    validate(again)


@given(json_values())
def test_validation_of_arbitrary_json_raises_only_definition_errors(data: Any) -> None:
    validate(data)
    validate({"apiVersion": "apeiro.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": "x"}, "spec": data})


@given(any_cel())
@example("(" * 400 + "1" + ")" * 400)
@example("[1]" + "[0]" * 300)
@example("9223372036854775807 + 1")
@example("-9223372036854775808 / -1")
@example("'a' * 3")
@example("'x'.matches('(a+)+$')")
def test_cel_raises_only_expression_errors(expr: str) -> None:
    try:
        references(expr)
    except ExpressionError:
        pass
    try:
        evaluate(expr, CONTEXT)
    except ExpressionError:
        pass
    try:
        evaluate_bool(expr, CONTEXT)
    except ExpressionError:
        pass
    try:
        render({"k": ["${{ " + expr + " }}", "text ${{ " + expr + " }} more"]}, CONTEXT)
    except ExpressionError:
        pass
