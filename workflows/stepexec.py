"""Running one invocation of a step type from workflow code (shared by the pipeline and fan-out workflows).

Deterministic: no I/O here, only Temporal commands (activities, child workflows, timers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ActivityCancellationType, ParentClosePolicy

from definitions import limits, queues
from definitions import search_attributes as sa
from definitions.pipeline import RetrySpec, Step
from definitions.steptypes import StepKind, StepType
from workflows.activity_options import HEARTBEAT_TIMEOUT, capped_heartbeat
from workflows.failures import describe_failure

#: Default retry for a step when neither the step nor the pipeline defaults give one.
DEFAULT_RETRY = RetrySpec()


class StepFailure(Exception):
    """A step failed in a way the engine reports by name (not a bug in the engine)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class InvocationContext:
    """Where an invocation sits: ids for readable child workflow ids and search attributes."""

    parent_id: str
    pipeline: str
    site: str | None
    step_path: str  # e.g. "spec.steps[3]" for error paths


def output_size_problem(outputs: Any) -> str | None:
    """Why a step's (or one forEach item's) outputs are too large to keep in history, or None."""
    size = limits.json_size(outputs)
    if size <= limits.MAX_STEP_OUTPUT_BYTES:
        return None
    return (f"the step's outputs are {size} bytes, over the limit of {limits.size_text(limits.MAX_STEP_OUTPUT_BYTES)}; "
            "return less (store large data elsewhere and pass a reference)")


def retry_policy(spec: RetrySpec, step_type: StepType) -> RetryPolicy:
    return RetryPolicy(
        maximum_attempts=spec.max_attempts,
        initial_interval=spec.initial_interval,
        backoff_coefficient=spec.backoff_coefficient,
        maximum_interval=spec.maximum_interval,
        non_retryable_error_types=[*spec.non_retryable_errors, *step_type.non_retryable_errors] or None,
    )


def validate_args(step_type: StepType, args: Any, path: str) -> BaseModel:
    """Type-check rendered arguments; a mistake in the definition is not worth a retry."""
    if not isinstance(args, dict):
        raise StepFailure(f"{path}.with: must be a mapping, got {type(args).__name__}")
    try:
        return step_type.args_model.model_validate(args)
    except ValidationError as exc:
        from definitions.validate import pydantic_problems

        problems = "; ".join(str(p) for p in pydantic_problems(exc, f"{path}.with"))
        raise StepFailure(f"invalid arguments for {step_type.name}: {problems}") from None


def child_search_attributes(ctx: InvocationContext, step: Step) -> TypedSearchAttributes | None:
    """Search attributes for a child, only when the server has them registered.

    An unregistered attribute would fail the workflow task forever; the parent carrying ApeiroPipeline
    proves registration (it was set when the run started).
    """
    if workflow.info().typed_search_attributes.get(sa.PIPELINE) is None:
        return None
    pairs = [
        SearchAttributePair(sa.PIPELINE, ctx.pipeline),
        SearchAttributePair(sa.STEP, step.name),
        SearchAttributePair(sa.STEP_TYPE, step.uses),
    ]
    if ctx.site:
        pairs.append(SearchAttributePair(sa.SITE, ctx.site))
    return TypedSearchAttributes(pairs)


async def invoke(step: Step, step_type: StepType, args: dict[str, Any], ctx: InvocationContext, *,
                 retry: RetrySpec, timeout: timedelta | None, index: int | None = None) -> Any:
    """Run one activity or child workflow for a step (or one forEach item) and return its outputs."""
    model = validate_args(step_type, args, ctx.step_path)
    suffix = step.name if index is None else f"{step.name}/{index}"
    timeout = timeout or step_type.default_timeout
    try:
        if step_type.kind is StepKind.ACTIVITY:
            return await workflow.execute_activity(
                step_type.target,
                model,
                task_queue=step_type.task_queue,
                activity_id=suffix,
                start_to_close_timeout=min(step_type.start_to_close, timeout) if timeout else step_type.start_to_close,
                schedule_to_close_timeout=timeout,
                heartbeat_timeout=capped_heartbeat(step_type.heartbeat_timeout),
                retry_policy=retry_policy(retry, step_type),
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                if step_type.heartbeat_timeout else ActivityCancellationType.TRY_CANCEL,
                result_type=dict,
            )
        if step_type.kind is StepKind.WORKFLOW:
            hook = getattr(model, "workflow_id", None)
            child_id = hook() if callable(hook) else None
            try:
                return await workflow.execute_child_workflow(
                    step_type.target,
                    model,
                    id=child_id or f"{ctx.parent_id}/{suffix}",
                    task_queue=step_type.task_queue,
                    execution_timeout=timeout,
                    retry_policy=retry_policy(retry, step_type) if retry.max_attempts > 1 else None,
                    parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                    search_attributes=child_search_attributes(ctx, step),
                    result_type=dict,
                )
            except WorkflowAlreadyStartedError:
                if child_id is None:
                    raise StepFailure(f"child workflow {ctx.parent_id}/{suffix} is already running") from None
                # The lifecycle's own id is taken (e.g. one provision workflow per server): join it.
                return await workflow.execute_activity(
                    "pipeline.await_workflow", child_id, task_queue=queues.PIPELINE,
                    start_to_close_timeout=timeout or timedelta(days=7), heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=RetryPolicy(maximum_attempts=3), result_type=dict,
                )
    except (ActivityError, ChildWorkflowError) as err:
        raise StepFailure(describe_failure(err)) from None
    raise StepFailure(f"step type {step_type.name} ({step_type.kind}) cannot run here")
