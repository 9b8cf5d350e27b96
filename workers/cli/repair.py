"""`apeiro retry | skip | pause | resume | rerun`: repair a pipeline run (Temporal updates, audited).

Each is an update with a validator in PipelineWorkflow: an action that may not happen (a step that
is not failed, a finished run, no reason) is refused with the reason and nothing changes (exit 1).
"""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from definitions import runstart
from definitions import search_attributes as sa
from definitions.runs import RepairRequest
from definitions.validate import DefinitionError
from workers.cli.common import (
    EXIT_OK,
    client_from_env,
    fail,
    rpc_fail,
    run_async,
    search_attributes_registered,
    ui_url,
)
from workers.cli.output import add_output_option, emit
from workers.config import ConfigError

#: command -> (update name, help, needs --step, reason required)
REPAIRS: dict[str, tuple[str, str, bool, bool]] = {
    "retry": ("retry_step", "run a failed step again; its dependants then run", True, True),
    "skip": ("skip_step", "skip a pending or failed step, with outputs you give (--outputs)", True, True),
    "pause": ("pause", "stop starting new steps (steps in flight go on)", False, True),
    "resume": ("resume", "start scheduling steps again after pause", False, False),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, (_update, help_text, needs_step, needs_reason) in REPAIRS.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("workflow_id", help="the run's workflow id")
        if needs_step:
            p.add_argument("--step", required=True, help="the step's name")
        p.add_argument("--as", dest="actor", default=None, help="who acts (recorded; default: $USER)")
        p.add_argument("--reason", required=needs_reason, default="", help="why (recorded in the step's audit trail)")
        if name == "skip":
            p.add_argument("--outputs", default=None, help="the skipped step's outputs as JSON (default: none)")
        add_output_option(p)
        p.set_defaults(func=cmd_repair, repair=name)

    p = sub.add_parser("rerun", help="start a new run of a run's pipeline from a step, reusing earlier outputs")
    p.add_argument("workflow_id", help="the earlier run's workflow id (running or finished)")
    p.add_argument("--from", dest="from_step", required=True, help="the first step to run again (its dependants too)")
    p.add_argument("--as", dest="actor", default=None, help="who starts the new run (default: $USER)")
    p.add_argument("--reason", default="", help="why (recorded in the new run's request with who started it)")
    p.add_argument("--id", default=None, help="the new run's workflow id (default: <old id>-rerun-<random>)")
    p.add_argument("--wait", action="store_true", help="follow the new run until it ends; exit 1 if it fails")
    p.set_defaults(func=cmd_rerun)


def cmd_repair(args: argparse.Namespace) -> int:
    update = REPAIRS[args.repair][0]
    outputs: Any = None
    if getattr(args, "outputs", None):
        try:
            outputs = json.loads(args.outputs)
        except json.JSONDecodeError as exc:
            return fail(f"--outputs is not JSON: {exc}")
    request = RepairRequest(
        step=getattr(args, "step", None), by=args.actor or getpass.getuser(), reason=args.reason, outputs=outputs
    )

    async def go() -> int:
        try:
            client = await client_from_env()
            result = await client.get_workflow_handle(args.workflow_id).execute_update(update, request)
        except WorkflowUpdateFailedError as exc:
            return fail(f"refused: {getattr(exc.cause, 'message', exc.cause)}")
        except (ConfigError, RPCError) as exc:
            return rpc_fail(exc, f"cannot {args.repair} in {args.workflow_id}")
        emit(args, result, lambda: f"{args.repair}: accepted ({result})" if result else f"{args.repair}: accepted")
        return EXIT_OK

    return run_async(go())


# --- rerun ---------------------------------------------------------------------------------------

# The logic is shared with the console (definitions.runstart); names kept for callers of this module.
downstream = runstart.downstream
RerunError = runstart.RerunError


async def rerun(
    client: Client, workflow_id: str, from_step: str, actor: str, new_id: str | None = None, reason: str = ""
) -> tuple[WorkflowHandle[Any, Any], list[str]]:
    """Start a new run of `workflow_id`'s pipeline from `from_step`, reusing the earlier outputs."""
    return await runstart.rerun(
        client, workflow_id, from_step, actor, new_id,
        search_attributes_ok=await search_attributes_registered(client, sa.NAMES), reason=reason,
    )


def cmd_rerun(args: argparse.Namespace) -> int:
    actor = args.actor or getpass.getuser()

    async def go() -> int:
        from workers.cli.pipeline import follow

        try:
            client = await client_from_env()
            started, reused = await rerun(client, args.workflow_id, args.from_step, actor, args.id, args.reason)
        except (DefinitionError, RerunError) as exc:
            return fail(str(exc))
        except (ConfigError, RPCError) as exc:
            return rpc_fail(exc, f"cannot re-run {args.workflow_id}")
        print(f"started {started.id} from step {args.from_step!r}; reused: {', '.join(reused) or 'nothing'}")
        print(f"  UI: {ui_url(started.id, client.namespace)}")
        return await follow(started) if args.wait else EXIT_OK

    return run_async(go())
