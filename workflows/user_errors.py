"""The engine's one rule for exceptions in workflow code.

An exception that comes from user data (a definition, inputs, an expression, a step's outputs) fails
the step or the run with a message naming the step and field. Only non-determinism and Temporal's
own errors fail the workflow *task*, which Temporal retries forever while the UI shows Running: that
is right for a bug fixed by deploying new code, and wrong for data no retry can change.

Enforced twice:
- explicitly: the pipeline and fan-out workflows catch :data:`USER_DATA_ERRORS` where they handle
  user data (rendering, expressions, outputs, builtins) and turn them into a failed step, or at the
  top of the run into a non-retryable ``ApplicationError``;
- structurally: every worker lists :data:`USER_DATA_ERRORS` in ``workflow_failure_exception_types``,
  so one that slips past the explicit handling still fails the workflow (with its message) instead
  of wedging it. None of these types is a base class of ``temporalio.workflow.NondeterminismError``,
  so non-determinism keeps failing the task (Temporal's SDK checks exactly that subclass relation).
"""

from __future__ import annotations

from pydantic import ValidationError

#: Python's exceptions for bad values: ValueError (pydantic's ValidationError, celpy's "overflow",
#: ExpressionError, DefinitionError), TypeError, ArithmeticError (OverflowError from a timedelta,
#: ZeroDivisionError), LookupError (KeyError/IndexError on a missing field), RecursionError (a deeply
#: nested value) and MemoryError.
USER_DATA_ERRORS: tuple[type[BaseException], ...] = (
    ValidationError,
    ValueError,
    TypeError,
    ArithmeticError,
    LookupError,
    RecursionError,
    MemoryError,
)

#: Longest message kept in a step record or failure (records travel in continue-as-new payloads).
MAX_MESSAGE_CHARS = 2000


def describe_user_error(exc: BaseException) -> str:
    """One line for a user-data exception: the message, or the type when there is none."""
    text = str(exc).strip()
    if isinstance(exc, RecursionError):
        text = "nested too deeply"
    elif not text or isinstance(exc, (ArithmeticError, LookupError, TypeError)):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return clip(text)


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 20] + f"... ({len(text)} chars)"
