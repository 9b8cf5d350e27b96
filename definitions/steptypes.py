"""The registry of step types a pipeline's `uses:` may name.

A step type maps a name (`server.discover`, `core.http`) onto what runs it: an activity or a child
workflow on a given task queue, or a builtin the pipeline workflow handles itself (wait, approval).
It also carries the pydantic models of its arguments (`with:`) and outputs, so validation before start
can check a definition fully and the workflow can type-check rendered arguments.

The registry is data only, importable inside the workflow sandbox. Each lifecycle registers its step
types from one table in its own `definitions` module (a :class:`StepTable` holds what the lifecycle's
steps share, each row what differs); :mod:`definitions.catalog` imports them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from functools import partialmethod
from typing import Any

from pydantic import BaseModel, ConfigDict


class StepKind(StrEnum):
    ACTIVITY = "activity"
    WORKFLOW = "workflow"
    BUILTIN = "builtin"


class NoOutputs(BaseModel):
    """Outputs model of a step type that produces none."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class StepType:
    """How one `uses:` name is executed.

    - ``target``: the activity name or workflow type the step calls (builtins: the handler key).
    - ``task_queue``: the queue of the worker that serves ``target`` (one queue per integration layer).
    - ``args_model``: validates the step's ``with:`` (extra fields are rejected with their path).
    - ``outputs_model``: the fields ``steps.NAME.outputs.FIELD`` may reference; ``None`` means any.
    - ``start_to_close`` / ``heartbeat_timeout``: per-attempt limits for activities.
    - ``default_timeout``: the whole step's limit when the definition gives none.
    - ``site_arg``: the argument that names the site, copied into the ApeiroSite search attribute.
    """

    name: str
    kind: StepKind
    target: str
    task_queue: str
    args_model: type[BaseModel]
    outputs_model: type[BaseModel] | None = None
    description: str = ""
    start_to_close: timedelta = timedelta(minutes=10)
    heartbeat_timeout: timedelta | None = None
    default_timeout: timedelta | None = None
    default_max_attempts: int = 5
    site_arg: str | None = None
    non_retryable_errors: tuple[str, ...] = field(default_factory=tuple)

    def output_fields(self) -> set[str] | None:
        if self.outputs_model is None or self.outputs_model.model_config.get("extra") == "allow":
            return None
        return set(self.outputs_model.model_fields) | {
            f.alias for f in self.outputs_model.model_fields.values() if f.alias
        }


@dataclass(frozen=True)
class StepTable:
    """One lifecycle's step types written as a table: the fields every row shares (its task queue, the
    error types no retry fixes, the argument naming the site) once, and per row what differs."""

    task_queue: str
    non_retryable_errors: tuple[str, ...] = ()
    site_arg: str | None = None

    def _row(
        self,
        kind: StepKind,
        name: str,
        target: str,
        args_model: type[BaseModel],
        outputs_model: type[BaseModel] | None,
        description: str,
        **more: Any,
    ) -> StepType:
        shared: dict[str, Any] = {"non_retryable_errors": self.non_retryable_errors, "site_arg": self.site_arg}
        return StepType(
            name=name,
            kind=kind,
            target=target,
            task_queue=self.task_queue,
            args_model=args_model,
            outputs_model=outputs_model,
            description=description,
            **{**shared, **more},
        )

    #: ``workflow(name, target, args_model, outputs_model, description, **more)``: a child workflow step
    #: (``target`` is the workflow type).
    workflow = partialmethod(_row, StepKind.WORKFLOW)
    #: ``builtin(name, target, ...)``: a step the pipeline workflow runs itself (``target``: its handler key).
    builtin = partialmethod(_row, StepKind.BUILTIN)

    def activity(
        self,
        name: str,
        args_model: type[BaseModel],
        outputs_model: type[BaseModel] | None,
        description: str,
        *,
        target: str | None = None,
        **more: Any,
    ) -> StepType:
        """An activity step; the activity is named like the step unless ``target`` says otherwise."""
        return self._row(StepKind.ACTIVITY, name, target or name, args_model, outputs_model, description, **more)


class UnknownStepType(KeyError):
    pass


class StepTypeRegistry:
    def __init__(self) -> None:
        self._types: dict[str, StepType] = {}

    def register(self, step_type: StepType, *, replace: bool = False) -> StepType:
        if step_type.name in self._types and not replace:
            raise ValueError(f"step type {step_type.name!r} is registered twice")
        self._types[step_type.name] = step_type
        return step_type

    def unregister(self, name: str) -> None:
        self._types.pop(name, None)

    def get(self, name: str) -> StepType:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownStepType(self.unknown_message(name)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def names(self) -> list[str]:
        return sorted(self._types)

    def all(self) -> list[StepType]:
        return [self._types[n] for n in self.names()]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._types, n=1)
        if close:
            return f"unknown step type {name!r} (did you mean {close[0]!r}?)"
        return f"unknown step type {name!r}; `apeiro steps` lists the registered ones"


#: The process-wide registry. Populated by :func:`definitions.catalog.load_catalog`.
REGISTRY = StepTypeRegistry()


def register_all(step_types: Iterable[StepType], registry: StepTypeRegistry | None = None) -> list[StepType]:
    """Register a lifecycle's table of step types (in the process-wide registry unless told otherwise)."""
    target = REGISTRY if registry is None else registry
    return [target.register(t) for t in step_types]
