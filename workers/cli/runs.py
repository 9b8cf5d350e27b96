"""`apeiro list | watch | cancel`: runs as an operator sees them (kubectl get / temporal workflow list)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from definitions.runquery import STATES, RunFilter, list_runs
from definitions.runs import PipelineStatus
from workers.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    client_from_env,
    fail,
    rpc_fail,
    run_async,
    table,
)
from workers.cli.output import add_output_option, emit, output_format, render
from workers.config import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("list", help="list pipeline runs from Temporal visibility, newest first")
    add_filter_args(p)
    p.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    add_output_option(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("watch", help="show a run's live status until it ends; exit 0 if it succeeded")
    p.add_argument("workflow_id", help="the run's workflow id")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between status queries (default 1)")
    add_output_option(p)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("cancel", help="cancel a run (steps in flight are cancelled, the run ends Cancelled)")
    p.add_argument("workflow_id", help="the run's workflow id")
    p.add_argument("--as", dest="actor", default=None, help="who cancels (logged; default: $USER)")
    p.add_argument("--reason", default="", help="why (recorded in the cancel request the Temporal UI shows)")
    p.set_defaults(func=cmd_cancel)


def add_filter_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", help="only runs of this pipeline (search attribute ApeiroPipeline)")
    p.add_argument("--site", help="only runs for this site (search attribute ApeiroSite)")
    p.add_argument("--state", choices=sorted(STATES), help="only runs in this state")


# --- list ----------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    run_filter = RunFilter(pipeline=args.pipeline, site=args.site, state=args.state)

    async def go() -> int:
        try:
            client = await client_from_env()
            runs = await list_runs(client, run_filter, limit=args.limit)
        except (ConfigError, RPCError) as exc:
            hint = ""
            if run_filter.uses_search_attributes:
                hint = " (are the search attributes ApeiroPipeline/ApeiroSite registered? see docs/operations.md)"
            return rpc_fail(exc, "cannot list runs" + hint)

        def text() -> str:
            rows = [
                [
                    r.workflow_id,
                    r.pipeline or "",
                    r.site or "",
                    r.state,
                    r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at else "",
                    _took(r.started_at, r.closed_at),
                ]
                for r in runs
            ]
            return table(rows, ["workflow id", "pipeline", "site", "state", "started", "took"]) if rows else "no runs"

        emit(args, runs, text)
        return EXIT_OK

    return run_async(go())


def _took(start: Any, end: Any) -> str:
    return f"{(end - start).total_seconds():.1f}s" if start and end else ""


# --- watch ---------------------------------------------------------------------------------------


def cmd_watch(args: argparse.Namespace) -> int:
    async def go() -> int:
        try:
            client = await client_from_env()
            return await watch(client, args.workflow_id, args.interval, output_format(args))
        except (ConfigError, RPCError) as exc:
            return rpc_fail(exc, f"cannot watch {args.workflow_id}")

    return run_async(go())


async def watch(client: Client, workflow_id: str, interval: float, fmt: str) -> int:
    """Redraw the status table on every change (a live view on a terminal), until the run closes.

    With `-o json|yaml` every change is printed as one document, so a script can follow a run.
    """
    from workers.cli.pipeline import format_status

    handle = client.get_workflow_handle(workflow_id)
    description = await handle.describe()  # NOT_FOUND here -> exit 3
    live = _Live(enabled=fmt == "text" and sys.stdout.isatty())
    last = ""
    while True:
        try:
            status = await handle.query("status", result_type=PipelineStatus)
        except RPCError as exc:
            status = None
            if "not found" in str(exc).lower():
                raise
        if status is not None:
            shown = render(fmt, status, lambda s=status: format_status(s))  # type: ignore[misc]
            if shown != last:
                last = shown
                live.show(shown)
        description = await handle.describe()
        if description.status not in (None, WorkflowExecutionStatus.RUNNING):
            break
        await asyncio.sleep(interval)
    live.stop()
    state = description.status
    if state == WorkflowExecutionStatus.COMPLETED:
        print(f"{workflow_id}: succeeded", file=sys.stderr)
        return EXIT_OK
    if state == WorkflowExecutionStatus.CONTINUED_AS_NEW:
        return await watch(client, workflow_id, interval, fmt)
    print(f"{workflow_id}: {state.name.lower() if state else 'unknown'}", file=sys.stderr)
    return EXIT_FAILED


class _Live:
    """rich's Live display on a terminal; plain printing of each change otherwise (pipes, CI logs)."""

    def __init__(self, enabled: bool) -> None:
        self._live: Any = None
        if enabled:
            from rich.live import Live
            from rich.text import Text

            self._text = Text
            self._live = Live(Text(""), auto_refresh=False)
            self._live.start()

    def show(self, text: str) -> None:
        if self._live is None:
            print(text, flush=True)
        else:
            self._live.update(self._text(text), refresh=True)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()


# --- cancel --------------------------------------------------------------------------------------


def cmd_cancel(args: argparse.Namespace) -> int:
    import getpass

    actor = args.actor or getpass.getuser()

    async def go() -> int:
        try:
            client = await client_from_env()
            handle = client.get_workflow_handle(args.workflow_id)
            description = await handle.describe()
            if description.status not in (None, WorkflowExecutionStatus.RUNNING):
                state = description.status.name.lower() if description.status else "closed"
                return fail(f"{args.workflow_id} is not running ({state}): nothing to cancel")
            await handle.cancel(reason=f"{actor}: {args.reason}" if args.reason else f"by {actor}")
        except (ConfigError, RPCError) as exc:
            return rpc_fail(exc, f"cannot cancel {args.workflow_id}")
        reason = f" ({args.reason})" if args.reason else ""
        print(f"cancel requested for {args.workflow_id} by {actor}{reason}")
        return EXIT_OK

    if not args.workflow_id:
        return fail("a workflow id is required", EXIT_USAGE)
    return run_async(go())
