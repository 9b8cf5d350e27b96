"""One activity call of a lifecycle's step, whose failure fails the workflow with the root cause.

Server provisioning and the metal-operator claim surface the root cause's type (ImageNotFound,
BmcAuthenticationFailed, ClaimUnbound...) as the workflow's non-retryable failure, with the step it
happened in, so operators and the pipeline can match on it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.failures import failure_info

T = TypeVar("T")


async def call_activity(
    name: str,
    arg: Any,
    result_type: type[T],
    *,
    start_to_close: timedelta,
    heartbeat: timedelta | None,
    retry_policy: RetryPolicy,
) -> T:
    """``workflow.execute_activity`` with the options a lifecycle gives every call, typed by ``result_type``."""
    res: T = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=start_to_close,
        heartbeat_timeout=heartbeat,
        retry_policy=retry_policy,
    )
    return res


async def execute_step_activity(step: str, name: str, arg: Any, result_type: type[T], **options: Any) -> T:
    """:func:`call_activity` (same options) in the lifecycle step ``step``."""
    try:
        return await call_activity(name, arg, result_type, **options)
    except ActivityError as exc:
        etype, msg = failure_info(exc)
        raise ApplicationError(f"step {step}: {msg}", type=etype, non_retryable=True) from exc
