"""`apeiro schedule apply FILE [--dry-run] | list | trigger ID`: maintenance schedules in Temporal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

from definitions.schedules import load_schedule_set
from definitions.validate import DefinitionError
from workers.cli.common import client_from_env, fail, run_async, table
from workers.config import ConfigError

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "definitions" / "schedules.yaml"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schedule", help="maintenance schedules: apply a schedule file, list, trigger")
    ssub = p.add_subparsers(dest="schedule_command", metavar="SUBCOMMAND")
    a = ssub.add_parser("apply", help="create/update/delete Temporal Schedules to match FILE")
    a.add_argument(
        "file", nargs="?", default=str(DEFAULT_FILE), help="schedule file (default definitions/schedules.yaml)"
    )
    a.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    a.set_defaults(func=cmd_apply)
    ls = ssub.add_parser("list", help="list the namespace's schedules")
    ls.set_defaults(func=cmd_list)
    t = ssub.add_parser("trigger", help="start a schedule's action now (outside its calendar)")
    t.add_argument("schedule_id", help="the schedule's id (`apeiro schedule list` shows them)")
    t.set_defaults(func=cmd_trigger)
    p.set_defaults(func=lambda args: _usage(p))


def cmd_apply(args: argparse.Namespace) -> int:
    from triggers.schedules import apply_plan, plan_apply, validate_entries

    try:
        schedules = load_schedule_set(Path(args.file))
    except DefinitionError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    problems = validate_entries(schedules)
    if problems:
        print(str(DefinitionError(problems, args.file)), file=sys.stderr)
        return 1

    async def apply(client: Client) -> int:
        plan = await plan_apply(client, schedules)
        for line in plan.lines():
            print(line)
        if args.dry_run:
            print("dry run: nothing changed")
            return 0
        await apply_plan(client, plan)
        print(
            f"applied: {len(plan.create)} created, {len(plan.update)} updated, {len(plan.delete)} deleted, "
            f"{len(plan.unchanged)} unchanged"
        )
        return 0

    return _with_client(apply)


def cmd_list(args: argparse.Namespace) -> int:
    from definitions.schedules import MANAGED_KEY, MANAGED_VALUE

    async def list_schedules(client: Client) -> int:
        rows = []
        async for item in await client.list_schedules():
            desc = await client.get_schedule_handle(item.id).describe()
            memo = await desc.memo()
            spec = desc.schedule.spec
            when = "; ".join(
                [
                    *spec.cron_expressions,
                    *(f"calendar {c.comment or ''}".strip() for c in spec.calendars),
                    *(f"every {i.every}" for i in spec.intervals),
                ]
            )
            nxt = desc.info.next_action_times[0].isoformat(timespec="minutes") if desc.info.next_action_times else ""
            action = desc.schedule.action
            rows.append(
                [
                    item.id,
                    getattr(action, "workflow", ""),
                    when,
                    spec.time_zone_name or "UTC",
                    "paused" if desc.schedule.state.paused else "active",
                    nxt,
                    "yes" if memo.get(MANAGED_KEY) == MANAGED_VALUE else "no",
                ]
            )
        print(table(rows, ["schedule", "workflow", "when", "zone", "state", "next run", "managed"]))
        return 0

    return _with_client(list_schedules)


def cmd_trigger(args: argparse.Namespace) -> int:
    async def trigger(client: Client) -> int:
        await client.get_schedule_handle(args.schedule_id).trigger()
        print(f"triggered {args.schedule_id}")
        return 0

    return _with_client(trigger)


def _with_client(work: Callable[[Client], Awaitable[int]]) -> int:
    """Run ``work`` with a Temporal client from the environment (APEIRO_TEMPORAL_*); a configuration
    or RPC error fails the command with its message."""

    async def go() -> int:
        try:
            return await work(await client_from_env())
        except (ConfigError, RPCError) as exc:
            return fail(str(exc))

    return run_async(go())


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2
