"""Full validation of a pipeline definition before anything starts.

Every problem is reported with the path of the offending field, in the form people read in the
YAML (``spec.steps[2].needs[0]: no step named 'discovr' (did you mean 'discover'?)``). The same code
runs in `apeiro validate`, in `apeiro run` and at the start of the pipeline workflow, so a definition
that reaches a worker some other way (the Temporal UI, the CLI) fails the workflow with the same
message instead of leaving a workflow task retrying forever.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from definitions import limits
from definitions.expressions import ExpressionError, contains_template, iter_templates, parse, references
from definitions.pipeline import InputSpec, InputType, Pipeline, Step
from definitions.steptypes import StepTypeRegistry
from definitions.yamlfiles import YamlProblem, parse_yaml

VARIABLES = ("inputs", "steps", "item", "index", "pipeline")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DefinitionError(ValueError):
    """A definition or its inputs are invalid. ``problems`` lists each with its path."""

    def __init__(self, problems: Iterable[Problem], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + "invalid definition:\n" + "\n".join(f"  {p}" for p in self.problems))


def format_loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def pydantic_problems(exc: ValidationError, prefix: str = "") -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = format_loc(err["loc"])
        path = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "literal_error":
            msg = f"{msg}, got {err.get('input')!r}"
        elif err["type"] == "string_pattern_mismatch" and path.endswith(".name"):
            msg = (f"{err.get('input')!r} is not a valid name: use a lower-case letter followed by letters, "
                   "digits or '_' (step names are CEL identifiers)")
        problems.append(Problem(path, msg))
    return problems


# --- YAML ----------------------------------------------------------------------------------------


def load_yaml(text: str, source: str = "") -> Any:
    """A definition's YAML through the hardened loader (definitions/yamlfiles.py), problems as DefinitionError."""
    try:
        return parse_yaml(text)
    except YamlProblem as exc:
        raise DefinitionError([Problem(exc.where, exc.problem)], source) from None


# --- inputs --------------------------------------------------------------------------------------

_PY_TYPES: dict[InputType, tuple[type, ...]] = {
    InputType.STRING: (str,),
    InputType.INTEGER: (int,),
    InputType.NUMBER: (int, float),
    InputType.BOOLEAN: (bool,),
    InputType.ARRAY: (list,),
    InputType.OBJECT: (dict,),
}


def type_error(kind: InputType, value: Any) -> str | None:
    ok = isinstance(value, _PY_TYPES[kind]) and not (kind is not InputType.BOOLEAN and isinstance(value, bool))
    if ok:
        return None
    return f"must be {'an' if kind.value[0] in 'aeiou' else 'a'} {kind.value}, got {type(value).__name__} {value!r}"


def coerce_cli_value(spec: InputSpec, raw: str) -> Any:
    """`--input k=v` values arrive as strings; turn them into the declared type (JSON for arrays/objects)."""
    import json

    if spec.type is InputType.STRING:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        if spec.type is InputType.BOOLEAN and raw.lower() in ("true", "false", "yes", "no"):
            return raw.lower() in ("true", "yes")
        return raw  # reported as a type error by check_inputs


def check_inputs(pipeline: Pipeline, given: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Apply defaults, check types and enums. Returns the resolved inputs and the problems."""
    problems: list[Problem] = []
    resolved: dict[str, Any] = {}
    declared = pipeline.spec.inputs
    for name in given:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(Problem(f"inputs.{name}", f"the pipeline declares no input {name!r}{hint}"))
    for name, spec in declared.items():
        if name in given:
            value = given[name]
        elif spec.default is not None:
            value = spec.default
        else:
            problems.append(Problem(f"inputs.{name}", f"required input is missing ({spec.type.value})"))
            continue
        err = type_error(spec.type, value)
        if err is None and spec.type is InputType.ARRAY and spec.items is not None:
            for i, item in enumerate(value):
                item_err = type_error(spec.items, item)
                if item_err:
                    problems.append(Problem(f"inputs.{name}[{i}]", item_err))
        if err:
            problems.append(Problem(f"inputs.{name}", err))
        elif spec.enum is not None and value not in spec.enum:
            problems.append(Problem(f"inputs.{name}", f"{value!r} is not one of {spec.enum!r}"))
        resolved[name] = value
    return resolved, problems


# --- the pipeline --------------------------------------------------------------------------------


def limit_problems(data: Any, inputs: Mapping[str, Any] | None = None) -> list[Problem]:
    """Size, step-count and number-range limits (definitions/limits.py), checked before anything else.

    Cheap and first: a 10,000-step or 5 MB definition is refused before the checks that grow with
    its size run (inside the workflow those would trip the deadlock detector).
    """
    problems: list[Problem] = []
    for path, message in limits.bad_numbers(data, ""):
        problems.append(Problem(path.lstrip("."), message))
    if inputs is not None:
        for path, message in limits.bad_numbers(dict(inputs), "inputs"):
            problems.append(Problem(path, message))
    if problems:
        return problems[:50]  # sizes next: JSON cannot even hold a 5,000-digit integer
    try:
        size = limits.json_size(data)
        input_size = limits.json_size(dict(inputs)) if inputs is not None else 0
    except (RecursionError, ValueError) as exc:
        return [Problem("", f"cannot be serialised as JSON: {type(exc).__name__}: {str(exc)[:100]}")]
    if size > limits.MAX_DEFINITION_BYTES:
        problems.append(Problem("", f"the definition is {size} bytes as JSON, over the limit of "
                                    f"{limits.size_text(limits.MAX_DEFINITION_BYTES)}; split it into "
                                    "sub-pipelines (core.pipeline)"))
    if input_size > limits.MAX_INPUT_BYTES:
        problems.append(Problem("inputs", f"the inputs are {input_size} bytes as JSON, over the limit of "
                                          f"{limits.size_text(limits.MAX_INPUT_BYTES)}"))
    spec = data.get("spec") if isinstance(data, dict) else None
    steps = spec.get("steps") if isinstance(spec, dict) else None
    if isinstance(steps, list) and len(steps) > limits.MAX_STEPS:
        problems.append(Problem("spec.steps", f"{len(steps)} steps, over the limit of {limits.MAX_STEPS}; "
                                              "use forEach or sub-pipelines (core.pipeline)"))
    return problems[:50]


def parse_pipeline(data: Any, source: str = "") -> Pipeline:
    if not isinstance(data, dict):
        raise DefinitionError([Problem("", f"a definition must be a mapping, got {type(data).__name__}")], source)
    try:
        return Pipeline.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(pydantic_problems(exc), source) from None


def _ancestors(pipeline: Pipeline) -> dict[str, set[str]]:
    needs = {s.name: [n for n in s.needs if n != s.name] for s in pipeline.spec.steps}
    memo: dict[str, set[str]] = {}

    def walk(name: str, trail: frozenset[str]) -> set[str]:
        if name in memo:
            return memo[name]
        out: set[str] = set()
        for dep in needs.get(name, []):
            if dep in trail or dep not in needs:
                continue
            out.add(dep)
            out |= walk(dep, trail | {dep})
        memo[name] = out
        return out

    return {name: walk(name, frozenset({name})) for name in needs}


def find_cycle(pipeline: Pipeline) -> list[str] | None:
    graph = {s.name: [n for n in s.needs] for s in pipeline.spec.steps}
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state:
                found = dfs(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for name in graph:
        if name not in state:
            cycle = dfs(name)
            if cycle:
                return cycle
    return None


def _check_args(step: Step, model: type[BaseModel], path: str) -> list[Problem]:
    """Validate the literal parts of `with:`; fields that hold expressions are checked at run time."""
    literal = {k: v for k, v in step.with_.items() if not contains_template(v)}
    dynamic = set(step.with_) - set(literal)
    try:
        model.model_validate(literal)
    except ValidationError as exc:
        problems = []
        for p, err in zip(pydantic_problems(exc), exc.errors(), strict=True):
            first = err["loc"][0] if err["loc"] else None
            if first in dynamic or (first is None and dynamic):
                continue  # depends on a value only known at run time
            problems.append(Problem(f"{path}.{p.path}" if p.path else path, p.message))
        return problems
    return []


def sub_pipelines(data: Any) -> set[str]:
    """Pipelines a definition runs through core.pipeline with a literal name (computed ones excluded)."""
    spec = data.get("spec") if isinstance(data, dict) else None
    steps = spec.get("steps") if isinstance(spec, dict) else None
    out: set[str] = set()
    for step in steps if isinstance(steps, list) else []:
        args = step.get("with") if isinstance(step, dict) and step.get("uses") == "core.pipeline" else None
        target = args.get("pipeline") if isinstance(args, dict) else None
        if isinstance(target, str) and not contains_template(target):
            out.add(target)
    return out


def pipeline_cycle(start: str, calls: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A chain of core.pipeline calls from ``start`` back to ``start`` (``a -> b -> a``), if any."""
    seen: set[str] = set()
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    while stack:
        name, trail = stack.pop()
        for target in sorted(calls.get(name, ())):
            if target == start:
                return [*trail, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*trail, target]))
    return None


class _Checker:
    def __init__(self, pipeline: Pipeline, registry: StepTypeRegistry,
                 known_pipelines: Iterable[str] | Mapping[str, Iterable[str]] | None) -> None:
        self.p = pipeline
        self.registry = registry
        self.known_pipelines = set(known_pipelines) if known_pipelines is not None else None
        #: name -> pipelines it calls, when the caller knows the library's call graph.
        self.calls = known_pipelines if isinstance(known_pipelines, Mapping) else None
        self.problems: list[Problem] = []
        self.index = {s.name: i for i, s in enumerate(pipeline.spec.steps)}
        self.ancestors: dict[str, set[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def run(self) -> list[Problem]:
        steps = self.p.spec.steps
        first_seen: dict[str, int] = {}
        for i, step in enumerate(steps):
            if step.name in first_seen:
                self.add(f"spec.steps[{i}].name",
                         f"duplicate step name {step.name!r} (first used at spec.steps[{first_seen[step.name]}])")
            else:
                first_seen[step.name] = i
        for name, spec in self.p.spec.inputs.items():
            self.check_input_spec(name, spec)
        for i, step in enumerate(steps):
            self.check_needs(i, step)
        cycle = find_cycle(self.p)
        if cycle:
            self.add(f"spec.steps[{self.index[cycle[0]]}].needs", "dependency cycle: " + " -> ".join(cycle))
        self.ancestors = _ancestors(self.p)
        for i, step in enumerate(steps):
            self.check_step(i, step)
        for key, expr in self.p.spec.outputs.items():
            self.check_expr(f"spec.outputs.{key}", expr, step=None)
        self.check_pipeline_cycle()
        return self.problems

    def check_pipeline_cycle(self) -> None:
        if self.calls is None:
            return
        calls = {**self.calls, self.p.name: sub_pipelines(self.p.model_dump(by_alias=True))}
        cycle = pipeline_cycle(self.p.name, calls)
        if cycle and len(cycle) > 2:  # a direct self-reference is reported on the step
            first = cycle[1]
            for i, step in enumerate(self.p.spec.steps):
                if step.uses == "core.pipeline" and step.with_.get("pipeline") == first:
                    self.add(f"spec.steps[{i}].with.pipeline", "sub-pipelines call each other in a cycle: "
                             + " -> ".join(cycle) + " (the run would nest without end)")
                    return

    def check_input_spec(self, name: str, spec: InputSpec) -> None:
        path = f"spec.inputs.{name}"
        if not name.isidentifier():
            self.add(path, f"input name {name!r} must be an identifier (letters, digits, '_')")
        if spec.default is not None:
            err = type_error(spec.type, spec.default)
            if err:
                self.add(f"{path}.default", err)
            elif spec.enum is not None and spec.default not in spec.enum:
                self.add(f"{path}.default", f"{spec.default!r} is not one of {spec.enum!r}")
        if spec.items is not None and spec.type is not InputType.ARRAY:
            self.add(f"{path}.items", "only arrays have items")

    def check_needs(self, i: int, step: Step) -> None:
        for j, dep in enumerate(step.needs):
            path = f"spec.steps[{i}].needs[{j}]"
            if dep == step.name:
                self.add(path, "a step cannot need itself")
            elif dep not in self.index:
                close = difflib.get_close_matches(dep, self.index, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.add(path, f"no step named {dep!r}{hint}")

    def check_step(self, i: int, step: Step) -> None:
        path = f"spec.steps[{i}]"
        step_type = None
        if step.uses not in self.registry:
            self.add(f"{path}.uses", self.registry.unknown_message(step.uses))
        else:
            step_type = self.registry.get(step.uses)
            self.problems.extend(_check_args(step, step_type.args_model, f"{path}.with"))
        if step.max_parallel is not None and step.for_each is None:
            self.add(f"{path}.maxParallel", "maxParallel only applies to a forEach step")
        if step.when is not None:
            self.check_expr(f"{path}.when", step.when, step)
        if isinstance(step.for_each, str):
            self.check_expr(f"{path}.forEach", step.for_each, step, in_for_each_expr=True)
        elif isinstance(step.for_each, list) and not step.for_each:
            self.add(f"{path}.forEach", "an empty list: the step would never run; remove forEach or the step")
        for field_path, expr in iter_templates(step.with_, f"{path}.with"):
            self.check_expr(field_path, expr, step)
        for key, expr in step.outputs.items():
            self.check_expr(f"{path}.outputs.{key}", expr, step, in_outputs=True)
        if step_type is not None and step.uses == "core.pipeline" and self.known_pipelines is not None:
            target = step.with_.get("pipeline")
            if isinstance(target, str) and not contains_template(target) and target not in self.known_pipelines:
                self.add(f"{path}.with.pipeline", f"no pipeline named {target!r} is known")
            if target == self.p.name:
                self.add(f"{path}.with.pipeline", "a pipeline cannot run itself as a sub-pipeline")

    def check_expr(self, path: str, expr: str, step: Step | None, *, in_for_each_expr: bool = False,
                   in_outputs: bool = False) -> None:
        try:
            refs = references(expr)
            parse(expr)
        except ExpressionError as exc:
            self.add(path, str(exc))
            return
        for ref in refs:
            self.check_reference(path, ref.chain, step, in_for_each_expr, in_outputs)

    def check_reference(self, path: str, chain: tuple[str | None, ...], step: Step | None,
                        in_for_each_expr: bool, in_outputs: bool) -> None:
        root = chain[0]
        if root == "inputs":
            if len(chain) > 1 and chain[1] is not None and chain[1] not in self.p.spec.inputs:
                declared = ", ".join(self.p.spec.inputs) or "none"
                self.add(path, f"no input named {chain[1]!r} (declared: {declared})")
        elif root == "steps":
            self.check_step_reference(path, chain, step)
        elif root in ("item", "index"):
            if step is None or step.for_each is None or in_for_each_expr:
                self.add(path, f"{root!r} is only defined inside a forEach step's with/when/outputs")
        elif root == "result":
            if not in_outputs:
                self.add(path, "'result' is only defined in a step's outputs mapping")
        elif root == "pipeline":
            if len(chain) > 1 and chain[1] not in (None, "name", "id"):
                self.add(path, f"pipeline has only 'name' and 'id', not {chain[1]!r}")
        else:
            close = difflib.get_close_matches(str(root), VARIABLES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.add(path, f"unknown variable {root!r}{hint}; variables are {', '.join(VARIABLES)}")

    def check_step_reference(self, path: str, chain: tuple[str | None, ...], step: Step | None) -> None:
        if len(chain) < 2 or chain[1] is None:
            return
        target = chain[1]
        if target not in self.index:
            close = difflib.get_close_matches(target, self.index, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.add(path, f"no step named {target!r}{hint}")
            return
        if step is not None:
            if target == step.name:
                self.add(path, f"step {target!r} cannot reference its own outputs")
                return
            if target not in self.ancestors.get(step.name, set()):
                self.add(path, f"step {target!r} is not in the needs of {step.name!r}: add it to needs "
                               "so it finishes before this step runs")
                return
        if len(chain) < 3 or chain[2] is None:
            return
        if chain[2] not in ("outputs", "status"):
            self.add(path, f"a step has 'outputs' and 'status', not {chain[2]!r}")
            return
        if chain[2] != "outputs" or len(chain) < 4 or chain[3] is None:
            return
        ref_step = self.p.spec.steps[self.index[target]]
        if ref_step.for_each is not None:
            self.add(path, f"step {target!r} runs forEach: its outputs are a list (one entry per item); "
                           f"index it (steps.{target}.outputs[0]) or map over it")
            return
        if ref_step.outputs:
            names: set[str] | None = set(ref_step.outputs)
        elif ref_step.uses in self.registry:
            names = self.registry.get(ref_step.uses).output_fields()
        else:
            names = None
        if names is not None and chain[3] not in names:
            close = difflib.get_close_matches(chain[3], names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.add(path, f"step {target!r} has no output {chain[3]!r}{hint}; outputs: "
                           f"{', '.join(sorted(names)) or 'none'}")


def check_pipeline(pipeline: Pipeline, registry: StepTypeRegistry,
                   known_pipelines: Iterable[str] | Mapping[str, Iterable[str]] | None = None) -> list[Problem]:
    return _Checker(pipeline, registry, known_pipelines).run()


def validate_definition(data: Any, registry: StepTypeRegistry, *, inputs: Mapping[str, Any] | None = None,
                        known_pipelines: Iterable[str] | Mapping[str, Iterable[str]] | None = None,
                        source: str = "") -> tuple[Pipeline, dict[str, Any]]:
    """Parse and check a definition (and inputs, when given). Raises DefinitionError with every problem.

    ``known_pipelines``: the names core.pipeline may call; a mapping (``PipelineLibrary.call_graph()``)
    also finds cycles through any chain of sub-pipelines.
    """
    too_big = limit_problems(data, inputs)
    if too_big:
        raise DefinitionError(too_big, source)
    pipeline = parse_pipeline(data, source)
    problems = check_pipeline(pipeline, registry, known_pipelines)
    resolved: dict[str, Any] = {}
    if inputs is not None:
        resolved, input_problems = check_inputs(pipeline, inputs)
        problems.extend(input_problems)
    if problems:
        raise DefinitionError(problems, source)
    return pipeline, resolved
