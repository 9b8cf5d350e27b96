"""`apeiro rollout status|pause|resume|abort|approve ID`: a fleet rollout (``fleet.rollout``) in waves.

    apeiro rollout status edge-site-20261202 --step upgrade_fleet     # a pipeline run and its step
    apeiro rollout status edge-site-20261202/upgrade_fleet            # the rollout's own workflow id
    apeiro rollout approve RUN --as bob --comment "canary looks fine"  # the wave waiting for approval
    apeiro rollout pause RUN --as alice --reason "looking at the canary"
    apeiro rollout abort RUN --as alice --reason "error budget burnt"

ID is the rollout's workflow id or a pipeline run id; with a run id, ``--step`` names the
``fleet.rollout`` step (needed only when the run has more than one). Exit codes: 0 done, 1 refused (an
approval the rollout does not accept, a rollout that has ended), 2 usage or configuration, 3 no such
run, step or rollout.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError

from definitions.rollout import AbortRequest, RolloutStatus, WaveApproval, WaveStatus
from definitions.runs import PipelineStatus
from workers.cli.common import EXIT_NOT_FOUND, client_from_env, fail, rpc_fail, run_async, table
from workers.cli.output import add_output_option, emit
from workers.config import ConfigError

STEP_TYPE = "fleet.rollout"
TARGET_MARK = {"pending": "·", "frozen": "❄", "running": "▶", "succeeded": "✔", "failed": "✘", "skipped": "↷"}
OUTCOME_MARK = {"Passed": "✔", "Failed": "✘", "TimedOut": "⧗", "Error": "!", "Inconclusive": "?"}


class NotFound(Exception):
    """No such run, step or rollout (exit 3)."""


class Refused(Exception):
    """The rollout cannot do what was asked (exit 1)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rollout = sub.add_parser("rollout", help="fleet rollouts in waves: status, pause, resume, abort, approve")
    rs = rollout.add_subparsers(dest="rollout_command", metavar="ACTION", required=True)

    def addressed(name: str, help_text: str) -> argparse.ArgumentParser:
        p = rs.add_parser(name, help=help_text)
        p.add_argument(
            "id",
            metavar="RUN_OR_WORKFLOW_ID",
            help="the rollout's workflow id, or the id of the pipeline run that holds it",
        )
        p.add_argument(
            "--step",
            default=None,
            help="with a pipeline run id: the fleet.rollout step (needed when the run has several)",
        )
        return p

    p = addressed("status", "every wave (with its gates and why it waits) and every target")
    add_output_option(p)
    p.set_defaults(func=cmd_status)

    for verb, help_text in (
        ("pause", "start no new target (targets in flight finish)"),
        ("resume", "continue a paused rollout"),
    ):
        p = addressed(verb, help_text)
        p.add_argument(
            "--as", dest="who", default=None, help="who acts (shown in the rollout's message; default: $USER)"
        )
        p.set_defaults(func=cmd_signal, signal=verb)

    p = addressed("abort", "stop the rollout: targets in flight finish, nothing new starts")
    p.add_argument("--as", dest="who", default=None, help="who aborts (recorded; default: $USER)")
    p.add_argument("--reason", required=True, help="why the rollout stops (recorded)")
    p.set_defaults(func=cmd_signal, signal="abort")

    p = addressed("approve", "vote on the approval gate before a wave (approve, or --reject)")
    p.add_argument("--wave", type=int, default=None, help="the wave the gate is before (default: the one waiting)")
    p.add_argument("--gate", default="", help="the approval gate's name when the wave has several")
    p.add_argument("--as", dest="who", default=None, help="who decides (must be an eligible approver; default: $USER)")
    p.add_argument("--comment", default="", help="a comment recorded with the vote")
    p.add_argument("--reject", action="store_true", help="vote no: the gate fails and the rollout stops")
    p.set_defaults(func=cmd_approve)


def _user(value: str | None) -> str:
    return value or getpass.getuser()


# --- finding the rollout -------------------------------------------------------------------------


async def resolve(client: Client, ident: str, step: str | None) -> str:
    """The rollout's workflow id from its own id, or from a pipeline run id (and its step)."""
    if step is None:
        try:
            desc = await client.get_workflow_handle(ident).describe()
        except RPCError as exc:
            raise NotFound(f"no run or rollout {ident!r} ({exc.message})") from None
        if "FleetRollout" in desc.workflow_type:
            return ident
        if "Pipeline" not in desc.workflow_type:
            raise NotFound(f"{ident} is a {desc.workflow_type}, not a fleet rollout nor a pipeline run")
    try:
        status = await client.get_workflow_handle(ident).query("status", result_type=PipelineStatus)
    except RPCError as exc:
        raise NotFound(f"no pipeline run {ident!r} ({exc.message})") from None
    rollouts = [s.name for s in status.steps if s.uses == STEP_TYPE]
    if step is not None:
        found = next((s for s in status.steps if s.name == step), None)
        if found is None:
            raise NotFound(f"run {ident} has no step {step!r}; its {STEP_TYPE} steps: {', '.join(rollouts) or 'none'}")
        if found.uses != STEP_TYPE:
            raise NotFound(f"step {step!r} of run {ident} is {found.uses}, not {STEP_TYPE}")
        return f"{ident}/{step}"
    if not rollouts:
        raise NotFound(f"run {ident} ({status.pipeline}) has no {STEP_TYPE} step")
    if len(rollouts) > 1:
        raise Refused(f"run {ident} has several {STEP_TYPE} steps; name one with --step: {', '.join(rollouts)}")
    return f"{ident}/{rollouts[0]}"


async def _rollout(args: argparse.Namespace) -> tuple[Any, str]:
    client = await client_from_env()
    wid = await resolve(client, args.id, args.step)
    return client.get_workflow_handle(wid), wid


async def _status(handle: Any, wid: str) -> RolloutStatus:
    try:
        status: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
    except RPCError as exc:
        raise NotFound(f"rollout {wid} has not started or cannot be read ({exc.message})") from None
    return status


def _run(action: Any) -> int:
    """Run one action with the CLI's exit codes: 1 refused, 2 configuration, 3 not found."""
    try:
        code: int = run_async(action())
    except NotFound as exc:
        return fail(str(exc), EXIT_NOT_FOUND)
    except Refused as exc:
        return fail(str(exc))
    except (ConfigError, RPCError) as exc:
        return rpc_fail(exc, "rollout")
    return code


async def _running(handle: Any, wid: str, verb: str) -> None:
    desc = await handle.describe()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        name = desc.status.name.lower() if desc.status else "closed"
        raise Refused(f"rollout {wid} has ended ({name}); nothing to {verb}")


# --- status --------------------------------------------------------------------------------------


def _gate_rows(wave: WaveStatus) -> list[list[Any]]:
    rows = []
    for g in wave.gates:
        outcome = g.outcome.value if g.outcome else g.state
        mark = OUTCOME_MARK.get(outcome, "…" if g.state not in ("Pending", "Done") else "·")
        nxt = f"{g.next_check:%m-%d %H:%M:%S}" if g.next_check else ""
        rows.append([f"before wave {wave.index}", f"{mark} {g.name} ({g.type})", outcome, nxt, g.reason[:90]])
    return rows


def format_status(st: RolloutStatus, wid: str) -> str:
    targets = sum(len(w.targets) for w in st.waves)
    lines = [
        f"rollout {wid}  state: {st.state}  waves: {len(st.waves)}  targets: {targets}  "
        f"failures: {st.failures} (budget {st.budget})"
        + (f"  continued: {st.continued} (history bound)" if st.continued else "")
    ]
    if st.message:
        lines.append(st.message)
    waves = [
        [
            w.index,
            w.state,
            len(w.targets),
            sum(t.state == "succeeded" for t in w.targets),
            sum(t.state == "failed" for t in w.targets),
            w.pending or w.gate,
        ]
        for w in st.waves
    ]
    lines += ["", table(waves, ["WAVE", "STATE", "TARGETS", "OK", "FAILED", "GATE / WHY PENDING"])]
    gates = [row for w in st.waves for row in _gate_rows(w)]
    if gates:
        lines += ["", table(gates, ["WHEN", "GATE", "OUTCOME", "NEXT CHECK (UTC)", "WHY"])]
    rows = [
        [w.index, f"{TARGET_MARK.get(t.state, ' ')} {t.name}", t.state, t.message[:90]]
        for w in st.waves
        for t in w.targets
    ]
    if rows:
        lines += ["", table(rows, ["WAVE", "TARGET", "STATE", "MESSAGE"])]
    for ref in st.waiting_approvals:
        wave, _, gate = ref.partition("/")
        lines.append(
            f"\nwaiting for approval: wave {wave} gate {gate}  (apeiro rollout approve {wid} --wave {wave} --as USER)"
        )
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    async def go() -> int:
        handle, wid = await _rollout(args)
        status = await _status(handle, wid)
        emit(args, {"workflow_id": wid, **status.model_dump(mode="json")}, lambda: format_status(status, wid))
        return 0

    return _run(go)


# --- actions -------------------------------------------------------------------------------------


def cmd_signal(args: argparse.Namespace) -> int:
    """pause/resume (who acts) and abort (who and why): signals; targets in flight always finish."""

    async def go() -> int:
        handle, wid = await _rollout(args)
        await _running(handle, wid, args.signal)
        who = _user(args.who)
        await handle.signal(args.signal, AbortRequest(by=who, reason=args.reason) if args.signal == "abort" else who)
        after = {"pause": " (targets in flight finish)", "abort": " (targets in flight finish, nothing new starts)"}
        print(f"{args.signal}: sent to {wid}{after.get(args.signal, '')}")
        return 0

    return _run(go)


def cmd_approve(args: argparse.Namespace) -> int:
    async def go() -> int:
        handle, wid = await _rollout(args)
        await _running(handle, wid, "approve")
        wave, gate = args.wave, args.gate
        if wave is None:
            waiting = (await _status(handle, wid)).waiting_approvals
            if not waiting:
                raise Refused(f"rollout {wid} waits for no approval now")
            if len({w.partition("/")[0] for w in waiting}) > 1:
                raise Refused(f"several waves wait for approval ({', '.join(waiting)}); name one with --wave")
            wave = int(waiting[0].partition("/")[0])
        vote = WaveApproval(
            wave=wave, gate=gate, approver=_user(args.who), comment=args.comment, approve=not args.reject
        )
        try:
            status: RolloutStatus = await handle.execute_update("approve_wave", vote, result_type=RolloutStatus)
        except WorkflowUpdateFailedError as exc:
            raise Refused(f"not accepted: {getattr(exc.cause, 'message', exc.cause)}") from None
        verb = "rejected" if args.reject else "approved"
        pending = status.waves[wave].pending if wave < len(status.waves) else ""
        print(f"{vote.approver} {verb} wave {wave} of {wid}" + (f"; still pending: {pending}" if pending else ""))
        return 0

    return _run(go)
