"""Expressions in pipeline definitions: CEL (the Common Expression Language Kubernetes uses).

CEL is side-effect free, terminates, and is deterministic, so the pipeline workflow can evaluate
expressions itself during replay. Never Python `eval`.

- ``when:`` and ``forEach:`` and ``outputs:`` values are bare CEL expressions.
- Inside ``with:`` arguments, a string may embed ``${{ expr }}``. A string that is exactly one
  ``${{ expr }}`` takes the expression's typed value (a list stays a list); otherwise each embedded
  expression is rendered into the string.

Variables: ``inputs`` (the pipeline's inputs), ``steps.NAME.outputs`` / ``steps.NAME.status``,
``item`` and ``index`` inside a ``forEach`` step, ``result`` inside a step's ``outputs:`` mapping,
``pipeline`` (``name``, ``id``).

Cost: CEL terminates, but ``l.map(a, l.map(b, ...))`` over a few lists costs millions of steps, and
the workflow evaluates inside a workflow task (Temporal's deadlock detector fires after 2 s and the
task retries forever). Like Kubernetes' CEL cost budget, every evaluation is metered while it runs:
cel-python's interpreter visits one syntax-tree node per step (macros evaluate their body in
sub-evaluators), so :class:`_MeteredEvaluator` counts those visits in one meter shared with its
sub-evaluators and stops at :data:`~definitions.limits.MAX_CEL_COST`. A workflow also gives its
scopes one :class:`CostBudget` per workflow task, so several costly expressions evaluated in the same
task cannot add up past the deadlock detector either. Results are bounded too
(:data:`~definitions.limits.MAX_CEL_RESULT_VALUES` values once converted back to Python).
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes
from celpy.evaluation import Evaluator
from lark import Token, Tree

from definitions.limits import INT64_MAX, INT64_MIN, MAX_CEL_COST, MAX_CEL_RESULT_VALUES

TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})
ROOTS = frozenset({"inputs", "steps", "item", "index", "result", "pipeline"})


class ExpressionError(ValueError):
    """An expression does not compile or cannot be evaluated; the message says which and why."""


class _CostExceeded(BaseException):
    """Raised inside cel-python when an evaluation runs out of budget.

    A BaseException, so cel-python's ``except Exception`` handlers (which turn errors into values and
    carry on, e.g. with the next element of a map) let it through: the evaluation stops at once.
    Measured: as an Exception, 4 nested maps kept raising it for every remaining element and held the
    workflow task past the 2 s deadlock detector.
    """


class CostBudget:
    """Evaluation steps several evaluations share (a workflow keeps one per workflow task)."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.used = 0
        self.limit = limit


class _Meter:
    __slots__ = ("exceeded", "limit", "shared", "used")

    def __init__(self, limit: int, shared: CostBudget | None = None) -> None:
        self.used = 0
        self.limit = limit
        self.shared = shared
        self.exceeded: str | None = None


class _MeteredEvaluator(Evaluator):
    """cel-python's tree-walking evaluator, charging one unit per node visited."""

    def __init__(self, ast: Tree[Any], activation: Any, meter: _Meter) -> None:
        super().__init__(ast, activation)
        self.meter = meter

    def sub_evaluator(self, ast: Tree[Any]) -> Evaluator:
        return _MeteredEvaluator(ast, self.activation, self.meter)

    def _visit_tree(self, tree: Tree[Any]) -> Any:
        meter = self.meter
        meter.used += 1
        shared = meter.shared
        if shared is not None:
            shared.used += 1
            if shared.used > shared.limit:
                meter.exceeded = (f"the expressions evaluated in one workflow task together cost more than the "
                                  f"limit of {shared.limit} evaluation steps")
                raise _CostExceeded()
        if meter.used > meter.limit:
            # evaluate() reads the flag, so the breach surfaces whatever cel-python does on the way out.
            meter.exceeded = f"costs more than the limit of {meter.limit} evaluation steps"
            raise _CostExceeded()
        return super()._visit_tree(tree)


class _MeteredRunner(celpy.InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        raise NotImplementedError("use metered_evaluate")

    def metered_evaluate(self, context: Any, meter: _Meter) -> Any:
        return _MeteredEvaluator(self.ast, self.new_activation(), meter).evaluate(context)


_ENV = celpy.Environment(runner_class=_MeteredRunner)
_PROGRAMS: dict[str, Any] = {}
_TREES: dict[str, Tree[Any]] = {}


def _first_line(text: str) -> str:
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0].strip() if lines else str(text)


#: Deepest parse tree accepted. Each CEL nesting level adds about a dozen grammar levels, so this
#: still allows expressions with ~20 levels of parentheses, far beyond anything readable.
MAX_DEPTH = 250


def _depth_exceeds(tree: Any, limit: int) -> bool:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, Tree):
            stack.extend((child, depth + 1) for child in node.children)
    return False


def parse(expr: str) -> Tree[Any]:
    """Parse once and cache (the cache is deterministic: same text, same tree)."""
    tree = _TREES.get(expr)
    if tree is None:
        if not expr.strip():
            raise ExpressionError("empty expression")
        try:
            tree = _ENV.compile(expr)
        except celpy.CELParseError as exc:
            where = ""
            line, col = getattr(exc, "line", None), getattr(exc, "column", None)
            if line is not None and col is not None:
                where = f" at line {line}, column {col}"
            raise ExpressionError(f"CEL syntax error{where} in {expr!r}") from None
        except Exception as exc:  # the parser raises lark errors for some inputs
            raise ExpressionError(f"CEL syntax error in {expr!r}: {_first_line(str(exc))}") from None
        if _depth_exceeds(tree, MAX_DEPTH):
            # The tree walkers (references, the evaluator) recurse; a deeper tree would crash them
            # with RecursionError instead of a message (found by the bad-input campaign).
            raise ExpressionError(f"expression nested too deeply (more than {MAX_DEPTH} levels): {expr[:60]!r}...")
        _TREES[expr] = tree
    return tree


def _program(expr: str) -> Any:
    prog = _PROGRAMS.get(expr)
    if prog is None:
        prog = _ENV.program(parse(expr))
        _PROGRAMS[expr] = prog
    return prog


def to_python(value: Any, budget: list[int] | None = None) -> Any:
    """CEL values to plain JSON-able Python values (at most MAX_CEL_RESULT_VALUES of them).

    Lists built by a metered evaluation may still share sub-lists (``l.map(x, l)``), so the converted
    result can be far larger than the evaluation's cost: the count stops it.
    """
    if budget is None:
        budget = [MAX_CEL_RESULT_VALUES]
    budget[0] -= 1
    if budget[0] < 0:
        raise ExpressionError(f"the result has more than {MAX_CEL_RESULT_VALUES} values (the limit)")
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, (celtypes.IntType, celtypes.UintType)):
        if not INT64_MIN <= int(value) <= INT64_MAX:
            raise ExpressionError("the result is an integer outside the 64-bit range")
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.BytesType):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, celtypes.TimestampType):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, celtypes.DurationType):
        return f"{value.total_seconds()}s"
    if isinstance(value, (celtypes.ListType, list, tuple)):
        return [to_python(v, budget) for v in value]
    if isinstance(value, (celtypes.MapType, dict)):
        return {str(to_python(k, budget)): to_python(v, budget) for k, v in value.items()}
    if value is None or isinstance(value, celtypes.NullType):
        return None
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def _describe_eval_error(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    message = str(args[0]) if args else str(exc)
    # celpy nests the real cause inside overload errors; surface the innermost "no such ..." part.
    inner = re.findall(r"no such (?:member in mapping: '[^'\\]+'|key)", str(exc))
    if inner and "no such" not in message:
        message = inner[0]
    return _first_line(message)


class Scope:
    """Variables for evaluation, converted to CEL lazily and once.

    Converting a large value (a 1,000-item input list) costs milliseconds; a forEach renders its
    arguments once per item, so the shared variables live in a parent scope that converts them once
    and each item adds only ``item`` and ``index``.
    """

    def __init__(self, variables: Mapping[str, Any], parent: Scope | None = None, *,
                 budget: CostBudget | None = None) -> None:
        self._raw = dict(variables)
        self._cel: dict[str, Any] = {}
        self._parent = parent
        #: Shared with child scopes: the cost every evaluation in this scope draws from.
        self.budget: CostBudget | None = budget
        if budget is None and parent is not None:
            self.budget = parent.budget

    def child(self, **variables: Any) -> Scope:
        return Scope(variables, parent=self)

    def lookup(self, name: str) -> tuple[bool, Any]:
        if name in self._raw:
            if name not in self._cel:
                try:
                    self._cel[name] = celpy.json_to_cel(self._raw[name])
                except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                    # e.g. an integer beyond int64 in an input or a step's outputs: celpy says "overflow".
                    raise ExpressionError(f"variable {name!r} holds a value CEL cannot represent "
                                          f"({_first_line(str(exc)) or type(exc).__name__}); integers "
                                          "must fit in 64 bits") from None
            return True, self._cel[name]
        if self._parent is not None:
            return self._parent.lookup(name)
        return False, None

    def activation(self, names: frozenset[str]) -> dict[str, Any]:
        out = {}
        for name in names:
            found, value = self.lookup(name)
            if found:
                out[name] = value
        return out


_ROOT_NAMES: dict[str, frozenset[str]] = {}


def _roots(expr: str) -> frozenset[str]:
    roots = _ROOT_NAMES.get(expr)
    if roots is None:
        roots = frozenset(str(r.chain[0]) for r in references(expr) if r.chain and r.chain[0] is not None)
        _ROOT_NAMES[expr] = roots
    return roots


def evaluate(expr: str, context: Mapping[str, Any] | Scope) -> Any:
    """Evaluate a bare CEL expression against JSON-like variables; return a plain Python value."""
    prog = _program(expr)
    scope = context if isinstance(context, Scope) else Scope(context)
    activation = scope.activation(_roots(expr))
    meter = _Meter(MAX_CEL_COST, scope.budget)
    try:
        result = prog.metered_evaluate(activation, meter)
    except _CostExceeded:
        result = None
    except celpy.CELEvalError as exc:
        result = exc
    except RecursionError:
        raise ExpressionError(f"cannot evaluate {_short(expr)}: nested too deeply") from None
    except Exception as exc:
        if meter.exceeded:
            result = exc
        else:
            raise ExpressionError(f"cannot evaluate {_short(expr)}: {_first_line(str(exc))}") from None
    if meter.exceeded:
        raise ExpressionError(f"{_short(expr)}: {meter.exceeded}; iterate over fewer items or nest fewer "
                              "map/filter macros")
    if isinstance(result, BaseException):
        raise ExpressionError(f"cannot evaluate {_short(expr)}: {_describe_eval_error(result)}")
    try:
        return to_python(result)
    except ExpressionError as exc:
        raise ExpressionError(f"cannot evaluate {_short(expr)}: {exc}") from None


def _short(expr: str) -> str:
    return repr(expr) if len(expr) <= 200 else repr(expr[:200]) + "..."


def evaluate_bool(expr: str, context: Mapping[str, Any] | Scope) -> bool:
    value = evaluate(expr, context)
    if not isinstance(value, bool):
        raise ExpressionError(f"{expr!r} must be true or false, got {type(value).__name__} {value!r}")
    return value


def template_expressions(text: str) -> list[str]:
    return [m.group(1).strip() for m in TEMPLATE.finditer(text)]


def is_template(value: Any) -> bool:
    return isinstance(value, str) and "${{" in value


def contains_template(value: Any) -> bool:
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, Mapping):
        return any(contains_template(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_template(v) for v in value)
    return False


def iter_templates(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Yield (path, expression) for every ``${{ }}`` inside a JSON-like value."""
    if isinstance(value, str):
        if "${{" in value and not TEMPLATE.search(value):
            yield path, value  # an opening brace without a close: reported as a syntax error
        for expr in template_expressions(value):
            yield path, expr
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from iter_templates(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from iter_templates(item, f"{path}[{i}]")


def render(value: Any, context: Mapping[str, Any] | Scope) -> Any:
    """Render every ``${{ }}`` inside a JSON-like value."""
    if not isinstance(context, Scope) and contains_template(value):
        context = Scope(context)
    if isinstance(value, str):
        if "${{" not in value:
            return value
        whole = TEMPLATE.fullmatch(value.strip())
        if whole:
            return evaluate(whole.group(1).strip(), context)
        if not TEMPLATE.search(value):
            raise ExpressionError(f"unterminated '${{{{' in {value!r}: close it with '}}}}'")

        def repl(match: re.Match[str]) -> str:
            result = evaluate(match.group(1).strip(), context)
            if isinstance(result, bool):
                return "true" if result else "false"
            return "" if result is None else str(result)

        return TEMPLATE.sub(repl, value)
    if isinstance(value, Mapping):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value


# --- static analysis for validation ------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A variable access chain, e.g. ``steps.discover.outputs.count`` -> ('steps','discover','outputs','count').

    ``None`` in the chain stands for a computed index (``steps[x]``) that cannot be checked statically.
    """

    chain: tuple[str | None, ...]


def _member_chain(node: Tree[Any]) -> tuple[list[str | None], list[Tree[Any]]] | None:
    """Walk the left spine of a `member` tree. Returns (chain, subtrees still to scan) or None."""
    names: list[str | None] = []
    pending: list[Tree[Any]] = []
    cur: Any = node
    while isinstance(cur, Tree):
        if cur.data == "member":
            cur = cur.children[0]
        elif cur.data == "member_dot":
            names.append(str(cur.children[1]))
            cur = cur.children[0]
        elif cur.data == "member_index":
            idx = cur.children[1]
            literal = _string_literal(idx)
            names.append(literal)
            if literal is None:
                pending.append(idx)
            cur = cur.children[0]
        elif cur.data == "primary":
            inner = cur.children[0]
            if isinstance(inner, Tree) and inner.data == "ident":
                names.append(str(inner.children[0]))
                names.reverse()
                return names, pending
            return None
        else:
            return None
    return None


def _unwrap(node: Any) -> Tree[Any]:
    """Descend through the single-child wrappers CEL's grammar puts around a member expression."""
    while isinstance(node, Tree) and node.data != "member" and len(node.children) == 1:
        node = node.children[0]
    return node if isinstance(node, Tree) else Tree("literal", [node])


def _string_literal(node: Any) -> str | None:
    """The value of a tree that is just a string literal, else None."""
    while isinstance(node, Tree) and len(node.children) == 1 and node.data != "literal":
        node = node.children[0]
    if isinstance(node, Tree) and node.data == "literal":
        tok = node.children[0]
        if (isinstance(tok, Token) and tok.type in ("STRING_LIT", "MLSTRING_LIT")) or (
            isinstance(tok, Token) and str(tok)[:1] in "\"'"
        ):
            text = str(tok)
            return text.strip("\"'")
    return None


def references(expr: str) -> list[Reference]:
    """Every free variable chain in an expression (macro-bound variables excluded)."""
    found: list[Reference] = []

    def visit(node: Any, bound: frozenset[str]) -> None:
        if not isinstance(node, Tree):
            return
        if node.data == "member_dot_arg":
            target, method = node.children[0], str(node.children[1])
            visit(target, bound)
            args = node.children[2] if len(node.children) > 2 else None
            inner_bound = bound
            if method in MACROS and isinstance(args, Tree) and args.children:
                var = _member_chain(_unwrap(args.children[0]))
                if var and len(var[0]) == 1 and var[0][0]:
                    inner_bound = bound | {var[0][0]}
                    for child in args.children[1:]:
                        visit(child, inner_bound)
                    return
            if isinstance(args, Tree):
                visit(args, inner_bound)
            return
        if node.data == "member":
            chain = _member_chain(node)
            if chain is not None:
                names, pending = chain
                if names and names[0] not in bound:
                    found.append(Reference(tuple(names)))
                for sub in pending:
                    visit(sub, bound)
                return
        for child in node.children:
            visit(child, bound)

    visit(parse(expr), frozenset())
    return found
