"""The one walk of Temporal's nested failures that every workflow uses (workflows/failures.py)."""

from __future__ import annotations

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from workflows.failures import as_non_retryable, describe_failure, failure_info, failure_message, root_cause


def _activity_error(cause: BaseException) -> ActivityError:
    err = ActivityError(
        "activity failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="w",
        activity_type="x",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    err.__cause__ = cause
    return err


def _child_error(cause: BaseException) -> ChildWorkflowError:
    err = ChildWorkflowError(
        "child failed",
        namespace="default",
        workflow_id="c",
        run_id="r",
        workflow_type="W",
        initiated_event_id=1,
        started_event_id=2,
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    err.__cause__ = cause
    return err


def test_root_cause_unwraps_child_and_activity_wrappers() -> None:
    inner = ApplicationError("quota exceeded", {"codes": ["ERR_INFRA_QUOTA_EXCEEDED"]}, type="ShootFailed")
    err = _child_error(_activity_error(inner))
    assert root_cause(err) is inner
    assert failure_message(err) == "quota exceeded"
    assert failure_info(err) == ("ShootFailed", "quota exceeded")


def test_root_cause_of_a_bare_wrapper_is_the_wrapper() -> None:
    err = _activity_error(None)  # type: ignore[arg-type]
    assert root_cause(err) is err


def test_as_non_retryable_keeps_type_message_and_details() -> None:
    out = as_non_retryable(_activity_error(ApplicationError("bad", {"a": 1}, type="Invalid")), "Fallback")
    assert (out.type, out.message, out.non_retryable, list(out.details)) == ("Invalid", "bad", True, [{"a": 1}])
    other = as_non_retryable(_activity_error(ValueError("boom")), "Fallback")
    assert (other.type, other.message) == ("Fallback", "boom")


def test_describe_failure_names_timeouts_and_types() -> None:
    timeout = TimeoutError("activity timed out", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[])
    assert describe_failure(_activity_error(timeout)) == "timed out (start-to-close)"
    assert describe_failure(_activity_error(ApplicationError("no", type="Denied"))) == "Denied: no"
