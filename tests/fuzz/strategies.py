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


# --- hostile but plausible definitions (issue 17): what passes validation must never wedge a run ---

#: Sub-pipelines the hostile strategy calls (written into the library of the property test).
LIBRARY = {
    "rec-a": {"steps": [{"name": "call", "uses": "core.pipeline", "with": {"pipeline": "rec-b"}}]},
    "rec-b": {"steps": [{"name": "call", "uses": "core.pipeline", "with": {"pipeline": "rec-a"}}]},
    "rec-dyn": {"inputs": {"next": {"type": "string", "default": "rec-dyn"}},
                "steps": [{"name": "call", "uses": "core.pipeline", "with": {"pipeline": "${{ inputs.next }}"}}]},
    "leaf": {"steps": [{"name": "echo", "uses": "core.echo", "with": {"values": {"ok": True}}}],
             "outputs": {"ok": "steps.echo.outputs.ok"}},
}

EXTREME_NUMBERS = st.one_of(
    st.sampled_from([0, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64, -(2**70), 10**30]),
    st.sampled_from([0.5, 1e308, -1e308, 5e-324, float("inf"), float("-inf"), float("nan")]),
    st.integers(),
    st.floats(),
)
EXTREME_DURATIONS = st.one_of(
    st.sampled_from(["0s", "1s", "1h", "3660d", "3661d", "99999999999d", "P99999999999D", "P3650D", "1.5s",
                     "1e400s", 1e308, 0.001, 2**70, float("inf"), float("nan"), -1, "${{ inputs.d }}"]),
    st.integers(0, 10**12),
    st.floats(min_value=0, allow_nan=False),
)


def nested_maps(depth: int, width: int = 10) -> str:
    """`[0..width).map(a, [0..width).map(b, ...))`: width**depth elements, an unbounded CEL cost."""
    items = "[" + ", ".join(str(i) for i in range(width)) + "]"
    expr = "1"
    for var in "abcdefgh"[:depth]:
        expr = f"{items}.map({var}, {expr})"
    return expr


COSTLY_CEL = st.one_of(
    st.builds(lambda d, w: f"size({nested_maps(d, w)}) > 0", st.integers(1, 6), st.integers(1, 12)),
    st.sampled_from([
        "inputs.n + 1 > 0", "inputs.n * inputs.n > 0", "inputs.x > 0.0", "size(inputs.l) > 0",
        "inputs.l.map(a, inputs.l.map(b, inputs.l)) != []", "inputs.l.all(v, v == v)",
        "string(inputs.n) != ''", "int(inputs.x) != 0", "9223372036854775807 + inputs.n > 0",
    ]),
)


@st.composite
def hostile_step(draw: st.DrawFn, index: int, earlier: list[str]) -> dict[str, Any]:
    name = f"s{index}"
    kind = draw(st.sampled_from(["echo", "echo", "blob", "wait", "sub", "cel"]))
    s: dict[str, Any] = {"name": name}
    if kind == "echo":
        s["uses"] = "core.echo"
        s["with"] = {"values": draw(st.dictionaries(
            st.sampled_from(["n", "x", "l", "d"]),
            st.one_of(EXTREME_NUMBERS, st.sampled_from(["${{ inputs.n }}", "${{ inputs.x }}", "${{ inputs.l }}",
                                                         "${{ inputs.n + 1 }}", "${{ [inputs.n, inputs.x] }}"])),
            max_size=3))}
    elif kind == "blob":
        s["uses"] = "test.blob"
        s["with"] = {"size": draw(st.sampled_from([0, 1_000, 25_000, 200_000, 300_000])),
                     "big_int": draw(st.booleans())}
        if draw(st.booleans()):
            s["forEach"] = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    elif kind == "wait":
        s["uses"] = "core.wait"
        s["with"] = {"duration": draw(EXTREME_DURATIONS)}
    elif kind == "sub":
        s["uses"] = "core.pipeline"
        s["with"] = {"pipeline": draw(st.sampled_from([*LIBRARY, "${{ inputs.p }}"]))}
    else:
        s["uses"] = "core.echo"
        s["when"] = draw(COSTLY_CEL)
    if earlier and draw(st.booleans()):
        s["needs"] = draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True))
        if draw(st.integers(0, 2)) == 0:
            s.setdefault("with", {})
            if s["uses"] == "core.echo":
                s["with"]["values"] = {**s["with"].get("values", {}),
                                       "up": "${{ steps." + s["needs"][0] + ".status }}"} if s["needs"] else {}
    if draw(st.integers(0, 4)) == 0:
        s["timeout"] = draw(EXTREME_DURATIONS.filter(lambda d: d != "${{ inputs.d }}"))
    if draw(st.integers(0, 3)) == 0:
        s["continueOnError"] = True
    return s


@st.composite
def hostile_run(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A definition and the inputs of one run: extreme numbers and durations, large outputs,
    recursion through sub-pipelines, costly CEL. Many pass validation; the rest test the raw path."""
    steps: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 6))):
        steps.append(draw(hostile_step(i, [s["name"] for s in steps])))
    spec: dict[str, Any] = {
        "inputs": {
            "n": {"type": "integer", "default": 1},
            "x": {"type": "number", "default": 1.5},
            "l": {"type": "array", "default": [1, 2, 3]},
            "d": {"type": "string", "default": "1s"},
            "p": {"type": "string", "default": "leaf"},
        },
        "steps": steps,
    }
    if draw(st.booleans()):
        spec["outputs"] = {"out": draw(st.sampled_from(
            ["inputs.n", "steps.s0.status", "size(inputs.l)", nested_maps(6), "inputs.l.map(v, inputs.l)"]))}
    inputs = draw(st.fixed_dictionaries({}, optional={
        "n": EXTREME_NUMBERS.filter(lambda v: isinstance(v, int)),
        "x": EXTREME_NUMBERS,
        "l": st.lists(EXTREME_NUMBERS, max_size=40),
        "d": EXTREME_DURATIONS.map(str),
        "p": st.sampled_from([*LIBRARY, "nosuch"]),
    }))
    definition = {"apiVersion": "apeiro.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": "hostile"},
                  "spec": spec}
    return definition, inputs
