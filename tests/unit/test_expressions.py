"""CEL evaluation, templates and the static reference analysis validation relies on."""

from __future__ import annotations

import pytest

from definitions.expressions import ExpressionError, evaluate, evaluate_bool, references, render


def test_typed_template_keeps_the_type() -> None:
    ctx = {"inputs": {"n": 3, "hosts": ["a", "b"]}}
    assert render("${{ inputs.n * 2 }}", ctx) == 6
    assert render("${{ inputs.hosts }}", ctx) == ["a", "b"]
    assert render("n=${{ inputs.n }} ok=${{ inputs.n > 1 }}", ctx) == "n=3 ok=true"
    assert render({"a": ["${{ size(inputs.hosts) }}"]}, ctx) == {"a": [2]}


def test_macros_and_maps() -> None:
    ctx = {"steps": {"s": {"outputs": [{"n": 1}, {"n": 2}]}}}
    assert evaluate("steps.s.outputs.map(o, o.n * 10)", ctx) == [10, 20]
    assert evaluate("steps.s.outputs.exists(o, o.n == 2)", ctx) is True


def test_when_must_be_boolean() -> None:
    with pytest.raises(ExpressionError, match="must be true or false"):
        evaluate_bool("1 + 1", {})


def test_missing_member_is_a_clear_error() -> None:
    with pytest.raises(ExpressionError, match="no such member in mapping: 'nope'"):
        evaluate("steps.nope.outputs", {"steps": {}})


def test_syntax_error_names_the_position() -> None:
    with pytest.raises(ExpressionError, match="CEL syntax error at line 1"):
        evaluate("inputs.a +", {"inputs": {}})


def test_unterminated_template() -> None:
    with pytest.raises(ExpressionError, match="unterminated"):
        render("x-${{ inputs.a", {"inputs": {"a": 1}})


def test_no_python_eval() -> None:
    with pytest.raises(ExpressionError):
        evaluate("__import__('os').system('true')", {})


def test_references_skip_macro_variables_and_mark_computed_indexes() -> None:
    refs = [r.chain for r in references('steps.a.outputs.map(x, x.n) + [inputs.b] + steps[inputs.k].status')]
    assert ("steps", "a", "outputs") in refs
    assert ("inputs", "b") in refs
    assert ("steps", None, "status") in refs
    assert not any(c[0] == "x" for c in refs)
