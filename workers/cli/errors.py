"""One line for any error a command did not handle itself: no command ever ends in a traceback.

Commands handle the errors they expect (definition problems, Temporal unreachable) with messages of
their own. Whatever else escapes (a binary file, a directory where a file belongs, a file nested
too deeply, a pydantic model refusing a flag, a missing output directory) reaches :func:`describe`
in the entry point, which says what was wrong in one line. ``apeiro -v`` adds the traceback for
bug reports.
"""

from __future__ import annotations

from pydantic import ValidationError

#: Longest message printed for an unexpected error (a huge argument must not flood the terminal).
MAX_MESSAGE = 500


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def describe(exc: BaseException) -> str:
    """What went wrong, in one line a person can act on."""
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError

    if isinstance(exc, WorkflowAlreadyStartedError):
        return (
            f"a workflow with id {exc.workflow_id!r} is already running; follow it with `apeiro status "
            f"{exc.workflow_id}`, or choose another --id"
        )
    if isinstance(exc, RPCError):
        return _one_line(f"Temporal refused the request ({exc.status.name}): {exc.message}")
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            loc = ".".join(str(p) for p in err["loc"])
            parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
        more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        return _one_line(f"invalid {exc.title}: " + "; ".join(parts) + more)
    if isinstance(exc, UnicodeError):
        return "input is not UTF-8 text (a binary file?); give a text file"
    if isinstance(exc, RecursionError):
        return "input is nested too deeply to process; flatten it"
    if isinstance(exc, IsADirectoryError):
        return _one_line(f"{exc.filename}: is a directory; give a file")
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return _one_line(f"{exc.filename}: no such file or directory (does its directory exist?)")
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return _one_line(f"{where}{exc.strerror}")
    if isinstance(exc, OverflowError):
        return _one_line(f"a number or duration is out of range: {exc}")
    text = str(exc) or type(exc).__name__
    return _one_line(f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text)
