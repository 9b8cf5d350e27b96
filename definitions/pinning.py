"""What a pipeline run pins at its start, so a release never changes a run already in flight.

A run resolves every step type it names (kind, target, task queue, timeouts, a hash of the argument
schema) and the definitions of the sub-pipelines it calls by a literal name, once, at start. It
keeps that :class:`PinnedDefinition` in its state, carries it through continue-as-new and hands it to
its sub-pipelines and fan-out chunks. A later build whose registry routes ``server.discover`` to
another queue, or whose library changes a sub-pipeline file, changes only runs started after it.

What stays live: the argument *model* (its code cannot be carried; the schema hash in the pin says
whether it changed) and sub-pipelines named by an expression (resolved when the step runs). A step
type that is gone from the new build still runs as pinned (the same activity or child workflow on
the same queue, its arguments unchecked), so a replay issues the same commands and never loops on
non-determinism; if no worker serves it any more, the step fails with Temporal's message naming the
activity or workflow type.

Data only; importable in the workflow sandbox.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from definitions.steptypes import StepKind, StepType, StepTypeRegistry

#: The builtin that runs a sub-pipeline; its literal ``with.pipeline`` names are pinned.
SUB_PIPELINE_TARGET = "PipelineWorkflow"
#: At most this many sub-pipeline definitions are loaded at start (the rest resolve when they run).
MAX_PINNED_SUB_PIPELINES = 32


class PinnedStepType(BaseModel):
    """How a step type ran when the run started (everything of :class:`StepType` but its models)."""

    name: str
    kind: StepKind
    target: str
    task_queue: str
    args_schema: str = Field(description="sha256 prefix of the argument model's JSON schema")
    start_to_close: timedelta
    heartbeat_timeout: timedelta | None = None
    default_timeout: timedelta | None = None
    default_max_attempts: int = 5
    site_arg: str | None = None
    non_retryable_errors: list[str] = Field(default_factory=list)


class PinnedDefinition(BaseModel):
    """A run's resolution of its definition; ``revision`` names it in `apeiro status`."""

    model_config = ConfigDict(extra="forbid")

    revision: str
    step_types: dict[str, PinnedStepType] = Field(default_factory=dict)
    #: Sub-pipeline name -> its definition, as loaded when the top-level run started.
    sub_pipelines: dict[str, dict[str, Any]] = Field(default_factory=dict)


class PinRequest(BaseModel):
    """Input of the ``pipeline.pin_definition`` activity."""

    definition: dict[str, Any]
    #: A parent pipeline's pin, whose step types and sub-pipelines win.
    inherited: PinnedDefinition | None = None


class MissingArgs(BaseModel):
    """Argument model of a pinned step type the running build no longer has (anything validates;
    the step fails when it runs, naming the type)."""

    model_config = ConfigDict(extra="allow")


def _hash(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@lru_cache(maxsize=512)
def _schema_hash(model: type[BaseModel]) -> str:
    return _hash(model.model_json_schema())


#: What a pin keeps of a step type as it is (besides the name, the args schema's hash and the
#: non-retryable errors): its routing and timeouts.
PINNED_FIELDS = (
    "kind",
    "target",
    "task_queue",
    "start_to_close",
    "heartbeat_timeout",
    "default_timeout",
    "default_max_attempts",
    "site_arg",
)


def _pinned_fields(source: StepType | PinnedStepType) -> dict[str, Any]:
    return {f: getattr(source, f) for f in PINNED_FIELDS}


def pin_step_type(step_type: StepType) -> PinnedStepType:
    return PinnedStepType(
        name=step_type.name,
        args_schema=_schema_hash(step_type.args_model),
        non_retryable_errors=list(step_type.non_retryable_errors),
        **_pinned_fields(step_type),
    )


def used_step_types(definition: dict[str, Any]) -> list[str]:
    """The ``uses:`` names of a raw definition (sub-pipelines are loaded as raw dicts)."""
    steps = (definition.get("spec") or {}).get("steps") or []
    return [s["uses"] for s in steps if isinstance(s, dict) and isinstance(s.get("uses"), str)]


def raw_steps(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, uses) of a raw definition's well-formed steps, for status while the run resolves them."""
    steps = (definition.get("spec") or {}).get("steps") if isinstance(definition, dict) else None
    return [
        (s["name"], s["uses"])
        for s in steps or []
        if isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("uses"), str)
    ]


def literal_sub_pipelines(definition: dict[str, Any], registry: StepTypeRegistry) -> list[str]:
    """Names of the sub-pipelines a definition calls by a literal name (no ``${{ }}``)."""
    names = []
    for s in (definition.get("spec") or {}).get("steps") or []:
        if not isinstance(s, dict) or s.get("uses") not in registry:
            continue
        st = registry.get(s["uses"])
        name = (s.get("with") or {}).get("pipeline") if isinstance(s.get("with"), dict) else None
        if (
            st.kind is StepKind.BUILTIN
            and st.target == SUB_PIPELINE_TARGET
            and isinstance(name, str)
            and "${{" not in name
            and name not in names
        ):
            names.append(name)
    return names


def pin(
    definition: dict[str, Any],
    registry: StepTypeRegistry,
    sub_pipelines: dict[str, dict[str, Any]] | None = None,
    inherited: PinnedDefinition | None = None,
) -> PinnedDefinition:
    """Resolve ``definition`` (and the loaded ``sub_pipelines``) against ``registry``.

    ``inherited`` is a parent's pin: its step types win, so a sub-pipeline runs the types its parent
    started with even when the child starts after a release.
    """
    subs = dict(inherited.sub_pipelines if inherited else {})
    subs.update(sub_pipelines or {})
    types = dict(inherited.step_types if inherited else {})
    for d in [definition, *subs.values()]:
        for name in used_step_types(d):
            if name not in types and name in registry:
                types[name] = pin_step_type(registry.get(name))
    revision = _hash(
        {"definition": definition, "types": {k: v.model_dump(mode="json") for k, v in types.items()}, "subs": subs}
    )
    return PinnedDefinition(revision=revision, step_types=types, sub_pipelines=subs)


def pinned_registry(pinned: PinnedDefinition, live: StepTypeRegistry) -> StepTypeRegistry:
    """``live`` with every pinned type as it was pinned: routing and timeouts from the pin, models
    from the running build; a type the build lost gets :class:`MissingArgs` (its step fails)."""
    out = StepTypeRegistry()
    for step_type in live.all():
        out.register(step_type)
    for name, p in pinned.step_types.items():
        base = live.get(name) if name in live else None
        out.register(
            replace(
                base
                or StepType(name=name, kind=p.kind, target=p.target, task_queue=p.task_queue, args_model=MissingArgs),
                non_retryable_errors=tuple(p.non_retryable_errors),
                **_pinned_fields(p),
            ),
            replace=True,
        )
    return out


def missing_type_message(step_type: StepType) -> str | None:
    """Why a pinned step may not run in this build (logged), or ``None`` when its type is here."""
    if step_type.args_model is not MissingArgs:
        return None
    return (
        f"step type {step_type.name!r} ({step_type.kind.value} {step_type.target!r} on queue "
        f"{step_type.task_queue!r}, pinned when this run started) no longer exists in this build of the "
        "workers; keep it registered until runs that use it have finished, or rerun the pipeline"
    )
