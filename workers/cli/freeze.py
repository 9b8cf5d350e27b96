"""`apeiro freeze start|end|status|exempt`: the landscape-wide change freeze.

    apeiro freeze start --reason "incident 4711: storage degraded" --until 4h --as alice
    apeiro freeze status
    apeiro freeze exempt promote-edge-app-1.4.2 --as bob --reason "hotfix for 4711"
    apeiro freeze end --as alice --reason "incident closed"

Every change is an update of the freeze workflow (``apeiro-freeze``), validated and recorded with who
and why; `status` prints the state and the audit list. Exit 1 when the freeze refuses (already
frozen, not frozen, missing approver...), with its reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("freeze", help="landscape-wide change freeze: start, end, status, exempt")
    sub = p.add_subparsers(dest="freeze_command", metavar="SUBCOMMAND")
    s = sub.add_parser("start", help="freeze: every promotion ring and fleet step waits until it ends")
    s.add_argument("--reason", required=True, help="why the landscape is frozen (recorded, shown to held workflows)")
    s.add_argument("--until", help="an end time (ISO 8601, e.g. 2026-12-03T08:00Z) or a duration (4h, 90m)")
    s.add_argument("--as", dest="who", required=True, help="who freezes (recorded)")
    s.add_argument("--recheck", type=float, default=30.0, help="seconds between checks of a held workflow")
    s.set_defaults(func=lambda a: _run(_start(a)))
    e = sub.add_parser("end", help="lift the freeze")
    e.add_argument("--as", dest="who", required=True, help="who lifts the freeze (recorded)")
    e.add_argument("--reason", default="ended", help="why it ends (recorded; default: ended)")
    e.set_defaults(func=lambda a: _run(_end(a)))
    st = sub.add_parser("status", help="is the landscape frozen? by whom, why, exemptions, audit")
    st.add_argument("--json", action="store_true", help="the freeze state as JSON (as with -o json)")
    st.add_argument("--audit", type=int, default=10, help="audit entries to show (default 10)")
    st.set_defaults(func=lambda a: _run(_status(a)))
    x = sub.add_parser("exempt", help="let one workflow (or a prefix*) act during the freeze")
    x.add_argument("subject", help="workflow id, or a prefix ending in *")
    x.add_argument("--as", dest="approver", help="who approves the exemption (recorded; required)")
    x.add_argument("--approver", dest="approver", help=argparse.SUPPRESS)  # deprecated spelling of --as
    x.add_argument("--reason", required=True, help="why this workflow may act during the freeze (recorded)")
    x.set_defaults(func=lambda a: _run(_exempt(a)))
    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])


def parse_until(text: str | None, now: datetime | None = None) -> datetime | None:
    if text is None:
        return None
    from definitions.durations import parse_duration

    now = now or datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        delta = parse_duration(text)
    except ValueError:
        delta = None
    if delta is None or isinstance(delta, str):
        raise ValueError(f"--until {text!r} is neither an ISO 8601 time nor a duration like 4h")
    return now + delta


def _run(coro: Any) -> int:
    try:
        code: int = asyncio.run(coro)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


async def handle(client: Any) -> Any:
    """The freeze workflow's handle, started (idle) if it does not run yet."""
    from temporalio.common import WorkflowIDConflictPolicy

    from definitions import queues
    from definitions.freeze import FREEZE_WORKFLOW, FREEZE_WORKFLOW_ID

    return await client.start_workflow(
        FREEZE_WORKFLOW,
        id=FREEZE_WORKFLOW_ID,
        task_queue=queues.PIPELINE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def update(client: Any, name: str, arg: Any) -> Any:
    """Run one freeze update; raises ValueError with the freeze's reason when it refuses."""
    from temporalio.client import WorkflowUpdateFailedError

    from definitions.freeze import FreezeState

    h = await handle(client)
    try:
        return await h.execute_update(name, arg, result_type=FreezeState)
    except WorkflowUpdateFailedError as exc:
        cause: Any = exc.cause
        raise RefusedError(getattr(cause, "message", None) or str(cause)) from None


class RefusedError(Exception):
    pass


async def _client() -> Any:
    from workers.config import connect

    return await connect()


async def _do(name: str, arg: Any) -> int:
    from workers.config import ConfigError

    try:
        state = await update(await _client(), name, arg)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RefusedError as exc:
        print(f"error: the freeze refused: {exc}", file=sys.stderr)
        return 1
    print(describe(state))
    return 0


async def _start(args: argparse.Namespace) -> int:
    from definitions.freeze import FreezeRequest

    req = FreezeRequest(reason=args.reason, by=args.who, until=parse_until(args.until), recheck_seconds=args.recheck)
    return await _do("start_freeze", req)


async def _end(args: argparse.Namespace) -> int:
    from definitions.freeze import FreezeEnd

    return await _do("end_freeze", FreezeEnd(by=args.who, reason=args.reason))


async def _exempt(args: argparse.Namespace) -> int:
    if not args.approver:
        print("error: name who approves the exemption with --as", file=sys.stderr)
        return 2
    from definitions.freeze import Exemption

    return await _do("exempt", Exemption(subject=args.subject, approver=args.approver, reason=args.reason))


async def _status(args: argparse.Namespace) -> int:
    from definitions.freeze import FreezeState
    from workers.config import ConfigError

    try:
        h = await handle(await _client())
        state = await h.query("state", result_type=FreezeState)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(state.model_dump(mode="json"), indent=2))
    else:
        print(describe(state, audit=args.audit))
    return 0


def describe(state: Any, audit: int = 5) -> str:
    lines = [state.active.message() if state.active else "not frozen"]
    if state.active:
        for e in state.active.exemptions:
            lines.append(f"  exempt: {e.subject} (approved by {e.approver}: {e.reason})")
    if state.audit and audit:
        lines.append("audit:")
        for a in state.audit[-audit:]:
            subject = f" {a.subject}" if a.subject else ""
            lines.append(f"  {a.at.isoformat(timespec='seconds')} {a.action}{subject} by {a.by}: {a.reason}")
    return "\n".join(lines)
