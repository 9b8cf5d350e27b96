"""From events to workflow starts and signals: rule matching, target rendering, validation, Temporal.

Everything that can be refused is refused while *planning*, before anything is started, so a
delivery with one bad event starts nothing (the sender fixes and resends it as a whole). Starting
uses deterministic workflow ids with conflict policy "use existing" and reuse policy "reject
duplicate": the same event delivered ten times, concurrently or a day later, has one workflow.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from definitions import queues
from definitions import search_attributes as sa
from definitions.catalog import load_catalog
from definitions.expressions import ExpressionError, evaluate_bool, render
from definitions.library import PipelineLibrary
from definitions.runs import PipelineRequest
from definitions.secrets import PRE_START
from definitions.steptypes import StepKind, StepTypeRegistry, UnknownStepType
from definitions.triggers import Route, Rule, Target
from definitions.validate import DefinitionError
from triggers.events import Event, HookError, id_fragment
from triggers.sources.base import validation_details

log = logging.getLogger(__name__)

#: Temporal calls of one request give up after this; the sender gets 503 and retries.
RPC_TIMEOUT = timedelta(seconds=10)
RETRY_AFTER_SECONDS = 5


@dataclass
class Planned:
    """One thing to do in Temporal for one event."""

    event_id: str
    rule: str
    kind: str  # "start" | "signal" | "signal-with-start"
    workflow_id: str
    workflow: str = ""
    task_queue: str = ""
    arg: Any = None
    signal: str = ""
    signal_arg: Any = None
    search_attributes: list[SearchAttributePair[str]] = field(default_factory=list)


@dataclass
class Outcome:
    event_id: str
    rule: str
    workflow_id: str
    action: str  # started | existing | signalled | signal-with-start


class LibraryCache:
    """The pipeline library, re-read at most every ``ttl`` seconds (it scans YAML files)."""

    def __init__(self, library: PipelineLibrary | None = None, ttl: float = 10.0) -> None:
        self.library = library or PipelineLibrary()
        self.ttl = ttl
        self._at = -1e9
        self._index: dict[str, Any] = {}
        self._graph: dict[str, set[str]] = {}
        self._loaded: dict[str, dict[str, Any]] = {}

    def _refresh(self) -> None:
        if time.monotonic() - self._at > self.ttl:
            # One scan gives both: the graph's keys are the index's names.
            self._graph = self.library.call_graph()
            self._index = self.library.index()
            self._loaded = {}
            self._at = time.monotonic()

    def call_graph(self) -> dict[str, set[str]]:
        """Pipeline name -> the pipelines it runs: validation finds cycles through any chain of
        core.pipeline (a list of names would catch only direct self-reference)."""
        self._refresh()
        return self._graph

    def names(self) -> list[str]:
        self._refresh()
        return sorted(self._index)

    def load(self, name: str) -> dict[str, Any]:
        self._refresh()
        if name not in self._index:
            raise HookError(
                404,
                f"no pipeline named {name!r}; known: {', '.join(sorted(self._index)) or 'none'}",
                outcome="unknown_pipeline",
            )
        if name not in self._loaded:
            try:
                self._loaded[name] = self.library.load(name)
            except DefinitionError as exc:
                raise HookError(422, str(exc)) from None
        return self._loaded[name]


def _render(value: Any, ctx: dict[str, Any], where: str) -> Any:
    try:
        return render(value, ctx)
    except ExpressionError as exc:
        raise HookError(422, f"{where}: the event does not fit the rule: {exc}") from None


class Planner:
    def __init__(self, library: LibraryCache | None = None, registry: StepTypeRegistry | None = None) -> None:
        self.library = library or LibraryCache()
        self.registry = registry or load_catalog()

    def match(self, rules: list[Rule], event: Event) -> Rule | None:
        ctx = {"event": event.data}
        for rule in rules:
            try:
                if evaluate_bool(rule.when, ctx):
                    return rule
            except ExpressionError as exc:
                log.debug("rule %s does not apply to event %s: %s", rule.name, event.id, exc)
        return None

    def plan(self, route: Route, rule: Rule, event: Event) -> Planned:
        ctx = {"event": event.data}
        t = rule.target
        where = f"rule {rule.name}"
        default_id = f"{route.name}-{id_fragment(event.id)}"
        if t.pipeline is not None:
            return self._plan_pipeline(route, rule, event, ctx, default_id, where)
        if t.step is not None:
            return self._plan_step(t, rule, event, ctx, default_id, where)
        return self._plan_signal(t, rule, event, ctx, where)

    def _workflow_id(self, t: Target, ctx: dict[str, Any], default: str, where: str) -> str:
        if t.id is None:
            return default
        wid = _render(t.id, ctx, f"{where}.target.id")
        if not isinstance(wid, str) or not wid:
            raise HookError(422, f"{where}: the workflow id template gave {wid!r}, not a non-empty string")
        return wid

    def _plan_pipeline(
        self, route: Route, rule: Rule, event: Event, ctx: dict[str, Any], default_id: str, where: str
    ) -> Planned:
        t = rule.target
        name = _render(t.pipeline, ctx, f"{where}.target.pipeline")
        if not isinstance(name, str) or not name:
            raise HookError(422, f"{where}: the pipeline name is {name!r}, not a non-empty string")
        inputs = _render(t.inputs, ctx, f"{where}.target.inputs")
        if not isinstance(inputs, dict):
            raise HookError(422, f"inputs must be a JSON object, got {type(inputs).__name__}")
        data = self.library.load(name)
        # Import here: workers.cli.pipeline pulls in the CLI; the gateway needs only its validation.
        from definitions.validate import validate_definition

        try:
            pipeline, resolved = validate_definition(
                data, self.registry, inputs=inputs, known_pipelines=self.library.call_graph(), source=f"pipeline {name}"
            )
        except DefinitionError as exc:
            raise HookError(
                422,
                f"inputs for pipeline {name!r} are not valid: " + "; ".join(str(p) for p in exc.problems),
                details=[{"path": p.path, "message": p.message} for p in exc.problems],
            ) from None
        pairs: list[SearchAttributePair[str]] = [SearchAttributePair(sa.PIPELINE, pipeline.name)]
        if isinstance(resolved.get("site"), str):
            pairs.append(SearchAttributePair(sa.SITE, resolved["site"]))
        requested_by = event.data.get("requested_by") or f"webhook:{route.name}"
        return Planned(
            event_id=event.id,
            rule=rule.name,
            kind="start",
            workflow_id=self._workflow_id(t, ctx, default_id, where),
            workflow="PipelineWorkflow",
            task_queue=queues.PIPELINE,
            arg=PipelineRequest(definition=data, inputs=resolved, requested_by=requested_by),
            search_attributes=pairs,
        )

    def _plan_step(
        self, t: Target, rule: Rule, event: Event, ctx: dict[str, Any], default_id: str, where: str
    ) -> Planned:
        assert t.step is not None
        try:
            step = self.registry.get(t.step)
        except UnknownStepType as exc:
            raise HookError(422, f"{where}: {exc}") from None
        if step.kind is not StepKind.WORKFLOW:
            raise HookError(422, f"{where}: step type {step.name} is not a workflow; wrap it in a pipeline")
        args = _render(t.with_, ctx, f"{where}.target.with")
        try:
            model: BaseModel = step.args_model.model_validate(args, context=PRE_START)
        except ValidationError as exc:
            details = validation_details(exc)
            raise HookError(
                422,
                f"arguments for {step.name} are not valid: "
                + "; ".join(f"{d['path']}: {d['message']}" for d in details),
                details=details,
            ) from None
        return Planned(
            event_id=event.id,
            rule=rule.name,
            kind="start",
            workflow_id=self._workflow_id(t, ctx, default_id, where),
            workflow=step.target,
            task_queue=step.task_queue,
            arg=model,
        )

    def _plan_signal(self, t: Target, rule: Rule, event: Event, ctx: dict[str, Any], where: str) -> Planned:
        assert t.signal is not None and t.workflow_id is not None
        wid = _render(t.workflow_id, ctx, f"{where}.target.workflow_id")
        if not isinstance(wid, str) or not wid:
            raise HookError(422, f"{where}: the workflow id template gave {wid!r}")
        signal_arg = _render(t.args, ctx, f"{where}.target.args")
        if t.start is None:
            return Planned(
                event_id=event.id,
                rule=rule.name,
                kind="signal",
                workflow_id=wid,
                signal=t.signal,
                signal_arg=signal_arg,
            )
        start_arg = _render(t.start.args, ctx, f"{where}.target.start.args")
        return Planned(
            event_id=event.id,
            rule=rule.name,
            kind="signal-with-start",
            workflow_id=wid,
            workflow=t.start.workflow,
            task_queue=t.start.task_queue,
            arg=start_arg,
            signal=t.signal,
            signal_arg=signal_arg,
        )


def temporal_error(exc: BaseException) -> HookError:
    """Turn a Temporal failure into the answer the sender gets."""
    if isinstance(exc, RPCError) and exc.status not in (
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    ):
        return HookError(502, f"Temporal refused the request: {exc.message}", outcome="temporal_error")
    return HookError(
        503,
        f"Temporal is not reachable ({exc}); nothing was started or lost: retry the same delivery later",
        outcome="unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _start(client: Client, p: Planned, **options: Any) -> None:
    """Start the planned workflow (its type, argument, id and queue) with ``options``."""
    await client.start_workflow(
        p.workflow, p.arg, id=p.workflow_id, task_queue=p.task_queue, rpc_timeout=RPC_TIMEOUT, **options
    )


async def execute(client: Client, p: Planned, *, search_attributes_ok: bool = False) -> Outcome:
    """Do one planned action. Raises HookError (404 for a signal to a missing workflow, 502/503)."""
    try:
        if p.kind == "start":
            attrs = TypedSearchAttributes(p.search_attributes) if search_attributes_ok and p.search_attributes else None
            try:
                await _start(
                    client,
                    p,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=attrs,
                )
            except WorkflowAlreadyStartedError:
                return Outcome(p.event_id, p.rule, p.workflow_id, "existing")
            return Outcome(p.event_id, p.rule, p.workflow_id, "started")
        if p.kind == "signal":
            try:
                await client.get_workflow_handle(p.workflow_id).signal(p.signal, p.signal_arg, rpc_timeout=RPC_TIMEOUT)
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    raise HookError(
                        404,
                        f"no running workflow {p.workflow_id!r} waits for signal {p.signal!r}; "
                        "it has not started yet or has already finished",
                        outcome="no_workflow",
                    ) from None
                raise
            return Outcome(p.event_id, p.rule, p.workflow_id, "signalled")
        await _start(client, p, start_signal=p.signal, start_signal_args=[p.signal_arg])
        return Outcome(p.event_id, p.rule, p.workflow_id, "signal-with-start")
    except HookError:
        raise
    except (RPCError, RuntimeError) as exc:
        raise temporal_error(exc) from None
