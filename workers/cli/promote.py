"""`apeiro promote start|status|approve|reject|abort|override|pause|resume|rollback|alert|validate`.

A promotion is addressed by its definition name and version (its workflow id is derived from both:
``promotion-<name>-<version>``), so operators never copy workflow ids around.
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from definitions import queues
from definitions.promotion import PromotionDefinitionError, promotion_workflow_id, validate_promotion
from definitions.promotion_runs import (
    ExternalAlert,
    GateOverride,
    GateStatus,
    OperatorAction,
    PromotionRequest,
    PromotionStatus,
)
from definitions.runs import ApprovalDecision, ApprovalState
from definitions.yamlfiles import load_yaml_file
from workers.cli.common import client_from_env, fail, rpc_fail, run_async, table
from workers.cli.output import add_output_option, emit
from workers.config import ConfigError

OUTCOME_MARK = {"Passed": "✔", "Overridden": "⚑", "Failed": "✘", "TimedOut": "⧗", "Error": "!", "Inconclusive": "?"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    promote = sub.add_parser("promote", help="ring promotion of a component version (Konfidence Stages)")
    ps = promote.add_subparsers(dest="promote_command", metavar="ACTION", required=True)

    def addressed(name: str, help_text: str) -> argparse.ArgumentParser:
        p = ps.add_parser(name, help=help_text)
        p.add_argument("promotion", help="the promotion's name (metadata.name) or its definition file")
        p.add_argument("version", help="the component version")
        return p

    p = ps.add_parser("validate", help="validate a promotion definition (PromQL included)")
    p.add_argument("file", type=Path, help="the Promotion definition (YAML)")
    p.set_defaults(func=cmd_validate)

    p = addressed("start", "start promoting a version (validated first)")
    p.add_argument("--as", dest="requested_by", default=None, help="who asks (may not approve it); default: $USER")
    p.add_argument("--requested-by", dest="requested_by", help=argparse.SUPPRESS)  # deprecated spelling
    p.add_argument("--override-reason", default=None, help="promote a version that failed before (audited)")
    p.add_argument("--wait", action="store_true", help="follow until it ends")
    p.set_defaults(func=cmd_start)

    p = addressed("status", "rings and gates as a table, with why each is pending")
    add_output_option(p, legacy_json=True)
    p.set_defaults(func=cmd_status)

    for verb in ("approve", "reject"):
        p = addressed(verb, f"{verb} an approval gate (ring/gate)")
        p.add_argument("gate", help="ring/gate, e.g. production/approval")
        p.add_argument("--as", dest="approver", default=None, help="who decides (default: $USER)")
        p.add_argument("--comment", default="", help="a comment recorded with the decision")
        p.set_defaults(func=cmd_decide, reject=verb == "reject")

    p = addressed("override", "override a gate (audited; needs a reason)")
    p.add_argument("gate", help="ring/gate")
    p.add_argument("--reason", required=True, help="why the gate is overridden (audited)")
    p.add_argument("--as", dest="by", default=None, help="who overrides (default: $USER)")
    p.set_defaults(func=cmd_override)

    for verb, help_text in (("abort", "stop the promotion (no rollback)"), ("rollback", "roll the current ring back"),
                            ("pause", "hold at the next gate or phase"), ("resume", "continue a paused promotion")):
        p = addressed(verb, help_text)
        p.add_argument("--reason", default="", help="why (recorded with the signal)")
        p.add_argument("--as", dest="by", default=None, help="who acts (default: $USER)")
        p.set_defaults(func=cmd_signal, signal=verb)

    p = addressed("alert", "report an external alert: fails verification of the ring at once")
    p.add_argument("message", help="what the alert says (shown as the ring's failure reason)")
    p.add_argument("--ring", default=None, help="the ring the alert is about (default: the current ring)")
    p.set_defaults(func=cmd_alert)


def _load(target: str) -> dict[str, Any]:
    path = Path(target)
    data = load_yaml_file(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a Promotion mapping")
    return data


def _name(target: str) -> str:
    path = Path(target)
    if path.is_file():
        return str((_load(target).get("metadata") or {}).get("name", ""))
    return target


def _user(value: str | None) -> str:
    return value or getpass.getuser()


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        p = validate_promotion(_load(str(args.file)))
    except PromotionDefinitionError as exc:
        print(exc)
        return 1
    except (OSError, ValueError, yaml.YAMLError) as exc:
        return fail(str(exc), 2)
    print(f"{args.file}: promotion {p.name} is valid ({len(p.spec.rings)} rings: "
          f"{' -> '.join(r.name for r in p.spec.rings)})")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    try:
        promotion = validate_promotion(_load(args.promotion))
    except PromotionDefinitionError as exc:
        print(exc)
        return 1
    except (OSError, ValueError, yaml.YAMLError) as exc:
        return fail(f"{exc} (start needs the definition file)", 2)

    async def go() -> int:
        wid = promotion_workflow_id(promotion.name, args.version)
        request = PromotionRequest(promotion=promotion, version=args.version,
                                   requested_by=_user(args.requested_by), override_reason=args.override_reason)
        try:
            client = await client_from_env()
            handle = await client.start_workflow("PromotionWorkflow", request, id=wid,
                                                 task_queue=queues.KONFIDENCE)
        except (ConfigError, RPCError) as exc:
            return fail(f"cannot start {wid}: {exc}")
        print(f"started {handle.id}")
        if args.wait:
            result = await handle.result()
            status = PromotionStatus.model_validate(result["status"])
            print(format_status(status))
            return 0 if status.state.value == "Succeeded" else 1
        return 0

    return run_async(go())


def _gate_line(g: GateStatus) -> str:
    mark = OUTCOME_MARK.get(g.outcome.value if g.outcome else "", "…" if g.state != "Done" else "-")
    return f"{mark} {g.name} ({g.phase})"


def format_status(st: PromotionStatus) -> str:
    head = (f"promotion {st.pipeline} {st.version} (#{st.sequence})  state: {st.state.value}"
            + ("  [paused]" if st.paused else ""))
    rows: list[list[Any]] = []
    for ring in st.rings:
        gates = ring.gates or []
        if not gates:
            rows.append([ring.ring, ring.state.value, "", "", "", ring.pending or ring.reason])
        for i, g in enumerate(gates):
            nxt = f"{g.next_check:%m-%d %H:%M:%S}" if g.next_check else ""
            why = g.reason
            rows.append([ring.ring if i == 0 else "", ring.state.value if i == 0 else "", _gate_line(g),
                         g.outcome.value if g.outcome else g.state, nxt, why[:90]])
    pins = next((r.components for r in st.rings if len(r.components) > 1), None)
    release = ["release: " + ", ".join(f"{c} {v}" for c, v in sorted(pins.items()))] if pins else []
    lines = [head, *release, table(rows, ["RING", "STATE", "GATE", "OUTCOME", "NEXT CHECK (UTC)", "WHY"])]
    for ring in st.rings:
        if ring.reason and ring.state.value in ("Failed", "RolledBack", "Stopped"):
            lines.append(f"{ring.ring}: {ring.reason}")
    if st.waiting_approvals:
        lines.append("waiting for approval: " + ", ".join(st.waiting_approvals)
                     + f"  (apeiro promote approve {st.pipeline} {st.version} GATE)")
    if st.message:
        lines.append(st.message)
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    async def go() -> int:
        wid = promotion_workflow_id(_name(args.promotion), args.version)
        try:
            client = await client_from_env()
            status = await client.get_workflow_handle(wid).query("status", result_type=PromotionStatus)
        except (ConfigError, RPCError) as exc:
            return rpc_fail(exc, f"cannot read the status of {wid}")
        emit(args, status, lambda: format_status(status))
        return 0

    return run_async(go())


async def _update(args: argparse.Namespace, name: str, arg: Any, result_type: type[Any]) -> Any:
    wid = promotion_workflow_id(_name(args.promotion), args.version)
    client = await client_from_env()
    return await client.get_workflow_handle(wid).execute_update(name, arg, result_type=result_type)


def cmd_decide(args: argparse.Namespace) -> int:
    async def go() -> int:
        decision = ApprovalDecision(step=args.gate, approver=_user(args.approver), approve=not args.reject,
                                    comment=args.comment)
        try:
            state = await _update(args, "reject" if args.reject else "approve", decision, ApprovalState)
        except WorkflowUpdateFailedError as exc:
            return fail(f"not accepted: {getattr(exc.cause, 'message', exc.cause)}")
        except (ConfigError, RPCError) as exc:
            return fail(str(exc))
        print(state.summary(args.gate))
        return 0

    return run_async(go())


def cmd_override(args: argparse.Namespace) -> int:
    async def go() -> int:
        ring, _, gate = args.gate.partition("/")
        try:
            await _update(args, "override_gate", GateOverride(ring=ring, gate=gate, by=_user(args.by),
                                                              reason=args.reason), GateStatus)
        except WorkflowUpdateFailedError as exc:
            return fail(f"not accepted: {getattr(exc.cause, 'message', exc.cause)}")
        except (ConfigError, RPCError) as exc:
            return fail(str(exc))
        print(f"{args.gate}: overridden ({args.reason})")
        return 0

    return run_async(go())


async def _signal(args: argparse.Namespace, signal: str, arg: Any) -> int:
    wid = promotion_workflow_id(_name(args.promotion), args.version)
    try:
        client = await client_from_env()
        await client.get_workflow_handle(wid).signal(signal, arg)
    except (ConfigError, RPCError) as exc:
        return fail(f"{signal} {wid}: {exc}")
    print(f"{signal}: sent to {wid}")
    return 0


def cmd_signal(args: argparse.Namespace) -> int:
    return run_async(_signal(args, args.signal, OperatorAction(by=_user(args.by), reason=args.reason)))


def cmd_alert(args: argparse.Namespace) -> int:
    return run_async(_signal(args, "external_alert", ExternalAlert(message=args.message, ring=args.ring,
                                                                   source="cli")))





async def approve_waiting(client: Client, promotion: str, version: str, approver: str,
                          comment: str = "approved by the demo") -> list[str]:
    """Approve every approval gate the promotion waits on now; returns the gates approved.

    For `make demo`: call it in the follow loop while a ``promotion.run`` step runs. A promotion that
    has not started yet (or has ended) approves nothing.
    """
    handle = client.get_workflow_handle(promotion_workflow_id(promotion, version))
    try:
        status = await handle.query("status", result_type=PromotionStatus)
    except RPCError:
        return []
    done = []
    for gate in status.waiting_approvals:
        try:
            await handle.execute_update("approve", ApprovalDecision(step=gate, approver=approver, comment=comment),
                                        result_type=ApprovalState)
            done.append(gate)
        except (WorkflowUpdateFailedError, RPCError):
            continue
    return done
