"""`apeiro validate | run | graph | status | approve | steps | pipelines`: pipelines from the terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from definitions import runstart
from definitions import search_attributes as sa
from definitions.catalog import load_catalog
from definitions.graph import to_dot, to_mermaid
from definitions.library import PipelineLibrary
from definitions.runs import ApprovalDecision, ApprovalState, PipelineStatus, Reuse, StepState
from definitions.validate import DefinitionError, parse_pipeline, validate_definition
from workers.cli.common import (
    add_input_args,
    client_from_env,
    fail,
    rpc_fail,
    run_async,
    search_attributes_registered,
    table,
    ui_url,
)
from workers.cli.definition_files import parse_inputs, read_definition
from workers.cli.output import add_output_option, emit, output_format
from workers.config import ConfigError

STATE_MARK = {
    StepState.PENDING: "·", StepState.RUNNING: "▶", StepState.WAITING: "⏸", StepState.SUCCEEDED: "✔",
    StepState.FAILED: "✘", StepState.SKIPPED: "↷", StepState.CANCELLED: "⊘",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check a pipeline definition fully; exit 1 with every problem")
    p.add_argument("file", help="a definition file (YAML)")
    add_input_args(p)
    add_output_option(p, legacy_format={"text": "text", "json": "json"})
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="validate, then start a pipeline (and follow it with --wait)")
    p.add_argument("target", help="a definition file, or the name of a pipeline the workers know")
    add_input_args(p)
    p.add_argument("--id", help="workflow id (default: <pipeline>-<time>-<random>)")
    p.add_argument("--wait", action="store_true", help="follow the run until it ends; exit 1 if it fails")
    p.add_argument("--as", dest="requested_by", default=None, help="who starts the run (four-eyes approvals)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("graph", help="print the DAG as Mermaid (or write SVG with --svg)")
    p.add_argument("target", help="a definition file or pipeline name")
    p.add_argument("--svg", metavar="OUT", help="also write an SVG (needs Graphviz `dot`)")
    p.add_argument("--dot", action="store_true", help="print Graphviz DOT instead of Mermaid")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("status", help="show the live state of every step of a run")
    p.add_argument("workflow_id", help="the run's workflow id (`apeiro list` shows them)")
    add_output_option(p, legacy_json=True)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("approve", help="approve (or --reject) a step waiting for approval")
    p.add_argument("workflow_id", help="the run's workflow id")
    p.add_argument("--step", required=True, help="the approval step's name")
    p.add_argument("--as", dest="approver", required=True, help="who approves (must be allowed by the step)")
    p.add_argument("--reject", action="store_true", help="reject instead of approve (the step fails)")
    p.add_argument("--comment", default="", help="a comment recorded with the vote")
    add_output_option(p)
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("steps", help="list the registered step types")
    add_output_option(p)
    p.set_defaults(func=cmd_steps)

    p = sub.add_parser("pipelines", help="list the pipelines the definition library holds")
    add_output_option(p)
    p.set_defaults(func=cmd_pipelines)


# --- validate ------------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    try:
        data, source = read_definition(args.file)
        inputs = parse_inputs(args.input, data) if args.input else None
        pipeline, _ = validate_definition(data, load_catalog(), inputs=inputs,
                                          known_pipelines=PipelineLibrary().call_graph(), source=source)
    except DefinitionError as exc:
        if output_format(args) != "text":
            emit(args, {"valid": False, "source": exc.source,
                        "problems": [{"path": p.path, "message": p.message} for p in exc.problems]}, str)
        else:
            for problem in exc.problems:
                print(f"{exc.source or args.file}: {problem}")
            print(f"{len(exc.problems)} problem(s)", file=sys.stderr)
        return 1
    emit(args, {"valid": True, "source": source, "pipeline": pipeline.name, "steps": len(pipeline.spec.steps)},
         lambda: f"{source}: valid pipeline {pipeline.name!r} ({len(pipeline.spec.steps)} steps)")
    return 0


# --- run -----------------------------------------------------------------------------------------

async def start_pipeline(client: Client, data: dict[str, Any], inputs: dict[str, Any], *,
                         workflow_id: str | None = None, requested_by: str | None = None,
                         source: str = "", reuse: Reuse | None = None) -> WorkflowHandle[Any, Any]:
    """Validate fully, then start (definitions.runstart); attributes only when the namespace has them."""
    return await runstart.start_pipeline(
        client, data, inputs, search_attributes_ok=await search_attributes_registered(client, sa.NAMES),
        workflow_id=workflow_id, requested_by=requested_by, source=source, reuse=reuse)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        data, source = read_definition(args.target)
        inputs = parse_inputs(args.input, data)
    except DefinitionError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return run_async(_run(args, data, inputs, source))


async def _run(args: argparse.Namespace, data: dict[str, Any], inputs: dict[str, Any], source: str) -> int:
    try:
        client = await client_from_env()
        handle = await start_pipeline(client, data, inputs, workflow_id=args.id,
                                      requested_by=args.requested_by, source=source)
    except DefinitionError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except (ConfigError, RPCError) as exc:
        return fail(str(exc))
    print(f"started {handle.id}\n  UI: {ui_url(handle.id, client.namespace)}")
    if not args.wait:
        return 0
    return await follow(handle)


async def follow(handle: WorkflowHandle[Any, Any], interval: float = 1.0, quiet: bool = False) -> int:
    """Print step changes until the run ends. Exit code 0 when it succeeded."""
    seen: dict[str, str] = {}

    async def show() -> None:
        try:
            status = await handle.query("status", result_type=PipelineStatus)
        except RPCError:
            return
        for step in status.steps:
            line = f"{STATE_MARK[step.state]} {step.name:<24} {step.state.value:<10} {step.error or step.message}"
            if step.items_total is not None:
                line += f" [{step.items_done}/{step.items_total}]"
            if seen.get(step.name) != line:
                seen[step.name] = line
                print(line, flush=True)

    result_task = asyncio.ensure_future(handle.result())
    while not result_task.done():
        if not quiet:
            await show()
        await asyncio.wait([result_task], timeout=interval)
    if not quiet:
        await show()
    try:
        result = result_task.result()
    except WorkflowFailureError as exc:
        cause = exc.cause
        print(f"FAILED: {getattr(cause, 'message', None) or cause}", file=sys.stderr)
        return 1
    print(f"succeeded; outputs: {json.dumps(result.get('outputs', {}) if isinstance(result, dict) else result)}")
    return 0


# --- graph ---------------------------------------------------------------------------------------

def cmd_graph(args: argparse.Namespace) -> int:
    try:
        data, source = read_definition(args.target)
        pipeline = parse_pipeline(data, source)
    except DefinitionError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(to_dot(pipeline) if args.dot else to_mermaid(pipeline), end="")
    if args.svg:
        dot = shutil.which("dot")
        if dot is None:
            return fail("Graphviz `dot` is not installed (Debian: apt-get install graphviz; "
                        "`make install` does it)")
        svg = subprocess.run([dot, "-Tsvg"], input=to_dot(pipeline).encode(), capture_output=True, check=False)
        if svg.returncode != 0:
            return fail(f"dot failed: {svg.stderr.decode(errors='replace')}")
        Path(args.svg).write_bytes(svg.stdout)
        print(f"wrote {args.svg}", file=sys.stderr)
    return 0


# --- status / approve ----------------------------------------------------------------------------

def format_status(status: PipelineStatus) -> str:
    rows = []
    for s in status.steps:
        took = ""
        if s.started_at and s.finished_at:
            took = f"{(s.finished_at - s.started_at).total_seconds():.1f}s"
        items = f"{s.items_done}/{s.items_total}" + (f" ({s.items_failed} failed)" if s.items_failed else "") \
            if s.items_total is not None else ""
        detail = s.error or s.message
        rows.append([f"{STATE_MARK[s.state]} {s.name}", s.uses, s.state.value, items, took, detail[:100]])
    head = f"pipeline {status.pipeline}  run {status.workflow_id}  state {status.state.value}"
    if status.generation > 1:
        head += f"  (continued as new {status.generation - 1}x)"
    if status.revision:
        head += f"  definition {status.revision}"
    text = head + "\n" + table(rows, ["step", "uses", "state", "items", "took", "detail"])
    if status.error:
        text += f"\nerror: {status.error}"
    return text


def cmd_status(args: argparse.Namespace) -> int:
    if not args.workflow_id.strip():
        return fail("give a workflow id (apeiro run prints it; `temporal workflow list` shows them)", 2)

    async def go() -> int:
        try:
            client = await client_from_env()
            status = await client.get_workflow_handle(args.workflow_id).query("status", result_type=PipelineStatus)
        except (ConfigError, RPCError) as exc:
            return rpc_fail(exc, f"cannot read the status of {args.workflow_id}")
        emit(args, status, lambda: format_status(status))
        return 0

    return run_async(go())


def cmd_approve(args: argparse.Namespace) -> int:
    async def go() -> int:
        decision = ApprovalDecision(step=args.step, approver=args.approver, approve=not args.reject,
                                    comment=args.comment)
        try:
            client = await client_from_env()
            state = await client.get_workflow_handle(args.workflow_id).execute_update(
                "approve", decision, result_type=ApprovalState)
        except WorkflowUpdateFailedError as exc:
            return fail(f"not accepted: {getattr(exc.cause, 'message', exc.cause)}")
        except (ConfigError, RPCError) as exc:
            return rpc_fail(exc, f"cannot approve in {args.workflow_id}")
        emit(args, state, lambda: state.summary(args.step))
        return 0

    return run_async(go())


def cmd_steps(args: argparse.Namespace) -> int:
    types = load_catalog().all()
    rows = [[t.name, t.kind.value, t.task_queue, t.target, t.description] for t in types]
    emit(args, [{"name": t.name, "kind": t.kind.value, "queue": t.task_queue, "runs": t.target,
                 "description": t.description} for t in types],
         lambda: table(rows, ["step type", "kind", "queue", "runs", "description"]))
    return 0


def cmd_pipelines(args: argparse.Namespace) -> int:
    index = PipelineLibrary().index()
    emit(args, [{"pipeline": name, "file": str(path)} for name, path in sorted(index.items())],
         lambda: table([[name, str(path)] for name, path in sorted(index.items())], ["pipeline", "file"]))
    return 0
