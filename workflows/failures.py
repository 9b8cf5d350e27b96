"""Reading Temporal's nested failures: one walk of the cause chain for every workflow.

An activity or child workflow failure reaches a workflow wrapped: ``ActivityError`` or
``ChildWorkflowError`` around the ``ApplicationError`` (or ``TimeoutError``, ``CancelledError``) that
says what went wrong. Every lifecycle wants the inner failure, either to show its message to an
operator or to fail itself with the same type and message; these helpers are that one walk, so the
lifecycles cannot drift apart in what they report. Sandbox-safe: no I/O, only ``temporalio.exceptions``.
"""

from __future__ import annotations

from collections.abc import Iterator

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    TimeoutError,
)

#: A cause chain longer than this is cut (a cycle or a pathological chain must not hang a workflow task).
MAX_CHAIN = 20


def failure_chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and its causes, outermost first (Temporal failures by ``.cause``, others by ``__cause__``)."""
    cur: BaseException | None = err
    seen = 0
    while cur is not None and seen < MAX_CHAIN:
        seen += 1
        yield cur
        cur = cur.cause if isinstance(cur, FailureError) else cur.__cause__


def root_cause(err: BaseException) -> BaseException:
    """The failure inside the ``ActivityError``/``ChildWorkflowError`` wrappers (the wrapper itself when
    it carries no cause)."""
    last = err
    for cur in failure_chain(err):
        last = cur
        if not isinstance(cur, ActivityError | ChildWorkflowError):
            return cur
    return last


def failure_message(err: BaseException) -> str:
    """The root cause's message (its ``message`` when it has one)."""
    cause = root_cause(err)
    return str(getattr(cause, "message", None) or cause)


def failure_info(err: BaseException) -> tuple[str, str]:
    """The root cause's error type and message of an activity/child failure."""
    cur = root_cause(err)
    if isinstance(cur, ApplicationError):
        return cur.type or "ApplicationError", cur.message
    if isinstance(cur, FailureError):
        return type(cur).__name__, cur.message
    return type(cur).__name__, str(cur)


def as_non_retryable(err: BaseException, default_type: str) -> ApplicationError:
    """The workflow's own non-retryable failure, keeping the root cause's type, message and details."""
    cause = root_cause(err)
    if isinstance(cause, ApplicationError):
        return ApplicationError(cause.message, *cause.details, type=cause.type, non_retryable=True)
    return ApplicationError(str(cause), type=default_type, non_retryable=True)


def describe_failure(err: BaseException) -> str:
    """The deepest message an operator can act on, from Temporal's nested failures (timeouts and
    cancellations named, an ``ApplicationError`` prefixed with its type)."""
    messages: list[str] = []
    for cur in failure_chain(err):
        if isinstance(cur, TimeoutError):
            kind = cur.type.name.lower().replace("_", "-") if cur.type is not None else "timeout"
            messages.append(f"timed out ({kind})")
        elif isinstance(cur, CancelledError):
            messages.append("cancelled")
        elif isinstance(cur, ApplicationError):
            prefix = f"{cur.type}: " if cur.type and cur.type not in ("Exception", "ApplicationError") else ""
            messages.append(prefix + cur.message)
        elif isinstance(cur, ActivityError | ChildWorkflowError):
            pass
        elif isinstance(cur, FailureError):
            messages.append(cur.message)
        else:
            messages.append(str(cur) or type(cur).__name__)
    return messages[-1] if messages else str(err)
