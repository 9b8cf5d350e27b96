"""Hypothesis strategies: pipeline definitions that are mostly well-formed, with CEL expressions
and the kinds of mistakes people make (wrong names, cycles, bad durations, broken expressions)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

NAMES = st.sampled_from(["a", "b", "c", "build", "deploy", "x1", "Bad-Name", "", "steps", "item"])
INPUT_NAMES = st.sampled_from(["n", "s", "flag", "items", "missing"])

LITERALS = st.one_of(
    st.integers(-(2**65), 2**65).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8).map(lambda t: '"' + t.replace('"', "") + '"'),
    st.sampled_from(["true", "false", "null", "[]", "{}", "[1, 2, 3]", "{'k': 1}", "b'xy'", "1u", "0x1F"]),
)
REFS = st.one_of(
    INPUT_NAMES.map(lambda n: f"inputs.{n}"),
    st.tuples(NAMES, st.sampled_from(["v", "n", "missing"])).map(lambda t: f"steps.{t[0]}.outputs.{t[1]}"),
    st.sampled_from(["item", "now", "run.id", "inputs", "steps", "nosuch"]),
)
BINOPS = st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", ">=", "&&", "||", " in "])
FUNCS = st.sampled_from(["size", "string", "int", "double", "has", "matches", "timestamp", "duration", "nosuch"])


def cel() -> st.SearchStrategy[str]:
    leaves = st.one_of(LITERALS, REFS)
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.tuples(inner, BINOPS, inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            inner.map(lambda e: f"!({e})"),
            inner.map(lambda e: f"-{e}"),
            st.tuples(FUNCS, inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} ? {t[1]} : {t[2]}"),
            st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
            st.tuples(inner, st.sampled_from(["map(x, x)", "filter(x, x > 1)", "all(x, x)", "exists(x, true)"])).map(
                lambda t: f"({t[0]}).{t[1]}"
            ),
            inner.map(lambda e: f"({e})"),
        ),
        max_leaves=8,
    )


def any_cel() -> st.SearchStrategy[str]:
    """Grammar-shaped expressions and plain garbage."""
    return st.one_of(cel(), st.text(max_size=30))


def template() -> st.SearchStrategy[Any]:
    return st.one_of(
        any_cel().map(lambda e: "${{ " + e + " }}"), st.integers(), st.text(max_size=10), st.booleans(), st.none()
    )


DURATIONS = st.sampled_from(["0s", "1s", "30s", "2m", "1h", "-1s", "soon", "1x", 5, "P1D", "${{ '1s' }}"])


@st.composite
def step(draw: st.DrawFn, earlier: list[str]) -> dict[str, Any]:
    name = draw(NAMES)
    uses = draw(st.sampled_from(["core.echo", "core.echo", "core.echo", "core.wait", "core.nosuch", "cluster.create"]))
    s: dict[str, Any] = {"name": name, "uses": uses}
    if uses == "core.wait":
        s["with"] = draw(st.one_of(st.fixed_dictionaries({"duration": DURATIONS}), st.just({})))
    else:
        s["with"] = {"values": draw(st.dictionaries(st.sampled_from(["v", "n", "s"]), template(), max_size=3))}
    if earlier and draw(st.booleans()):
        s["needs"] = draw(st.lists(st.sampled_from([*earlier, "ghost", name]), max_size=3))
    if draw(st.integers(0, 4)) == 0:
        s["when"] = draw(any_cel())
    if draw(st.integers(0, 4)) == 0:
        s["forEach"] = draw(st.one_of(any_cel(), st.lists(st.integers(), max_size=4)))
        if draw(st.booleans()):
            s["maxParallel"] = draw(st.integers(-1, 5))
    if draw(st.integers(0, 6)) == 0:
        s[draw(st.sampled_from(["timeout", "continueOnError", "retry", "bogus"]))] = draw(
            st.one_of(DURATIONS, st.booleans(), st.just({"maxAttempts": 2}))
        )
    return s


@st.composite
def definition(draw: st.DrawFn) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 5))):
        steps.append(draw(step([str(x["name"]) for x in steps])))
    spec: dict[str, Any] = {"steps": steps}
    if draw(st.booleans()):
        spec["inputs"] = draw(
            st.dictionaries(
                INPUT_NAMES,
                st.one_of(
                    st.fixed_dictionaries(
                        {"type": st.just("integer"), "default": st.one_of(st.integers(), st.text(max_size=3))}
                    ),
                    st.fixed_dictionaries({"type": st.just("string"), "default": st.text(max_size=5)}),
                    st.fixed_dictionaries({"type": st.sampled_from(["array", "object", "nosuch"])}),
                ),
                max_size=2,
            )
        )
    if draw(st.booleans()):
        spec["outputs"] = draw(st.dictionaries(st.sampled_from(["o", "p"]), any_cel(), max_size=2))
    return {
        "apiVersion": draw(st.sampled_from(["apeiro.dev/v1alpha1", "apeiro.dev/v1alpha1", "v2"])),
        "kind": "Pipeline",
        "metadata": {"name": draw(st.sampled_from(["fuzz", "Fuzz!", ""]))},
        "spec": spec,
    }


def json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        max_leaves=20,
    )
