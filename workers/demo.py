"""`make demo`: the edge-site pipeline against the local landscape, end to end, with a summary.

Starts the landscape (fresh state), runs workers for every queue in this process, starts the
pipeline exactly as `apeiro run` does (validated first), grants the approval the way an operator would
(the `approve` update), prints a summary, and stops everything it started. Beside edge-site it runs
edge-fleet-upgrade: a cluster upgrade over a fleet of shoots in two waves with gates between them,
followed as `apeiro rollout status` shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from definitions.library import EXAMPLES
from definitions.promotion import promotion_workflow_id
from definitions.promotion_runs import PromotionStatus
from definitions.rollout import RolloutStatus
from definitions.runs import ApprovalDecision, ApprovalState, PipelineStatus, StepState
from definitions.validate import load_yaml
from triggers.demo import DEMO_APPROVER, PROMOTION, show_triggers
from workers.cli.common import ui_url
from workers.cli.pipeline import STATE_MARK, format_status, start_pipeline
from workers.cli.promote import approve_waiting
from workers.cli.promote import format_status as format_promotion
from workers.cli.rollout import NotFound, resolve
from workers.cli.rollout import format_status as format_rollout
from workers.config import TemporalSettings, connect
from workers.landscape_loader import load_landscape
from workers.queues import known_queues
from workers.worker import build_workers

DEMO_REQUESTER = "demo-operator"
#: The second demo pipeline: a cluster upgrade in two waves (canary, gates, the rest), run beside edge-site.
FLEET_FILE = EXAMPLES / "edge-fleet-upgrade.yaml"
FLEET_STEP = "upgrade_fleet"


def run_demo(state_dir: Path, pipeline_file: Path | None = None) -> int:
    # The demo prints its own progress; per-activity log lines (useful in worker logs) would bury it.
    for name in ("temporalio.activity", "temporalio.workflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    local = load_landscape("local")  # LandscapeNotInstalled says what to install
    if state_dir.exists():
        shutil.rmtree(state_dir)
    landscape = local.local_landscape(state_dir)
    print(f"starting the local landscape in {state_dir} ...", flush=True)
    started = time.monotonic()
    with landscape.running():
        print(f"landscape up in {time.monotonic() - started:.1f}s:")
        for part in landscape.parts:
            print(f"  {part.name:<12} {', '.join(f'{k}={v}' for k, v in part.endpoints.items())}")
        os.environ.update(landscape.env())
        code = asyncio.run(_run(landscape, pipeline_file or EXAMPLES / "edge-site.yaml"))
    print("landscape stopped.")
    return code


async def _run(landscape: Any, pipeline_file: Path) -> int:
    """``landscape``: the running landscape.Landscape (typed loosely: the product does not import it)."""
    client = await connect(TemporalSettings.from_env())
    workers = build_workers(client, known_queues())
    async with contextlib.AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        data = load_yaml(pipeline_file.read_text(), str(pipeline_file))
        inputs: dict[str, Any] = {}
        for part in landscape.parts:
            inputs.update(part.pipeline_inputs())
        handle = await start_pipeline(client, data, inputs, requested_by=DEMO_REQUESTER, source=str(pipeline_file))
        ui = landscape.part("temporal").endpoints.get("ui", "")
        print(f"\nstarted pipeline run {handle.id}")
        if ui:
            os.environ.setdefault("APEIRO_UI_URL", ui)
            print(f"  Temporal UI: {ui_url(handle.id, client.namespace)}")
        fleet = await _start_fleet(client, inputs) if pipeline_file == EXAMPLES / "edge-site.yaml" else None
        watcher = asyncio.ensure_future(_watch_fleet(client, fleet)) if fleet is not None else None
        started = time.monotonic()
        version = str(inputs.get("ocmVersion", "1.0.0"))
        code = await _follow_and_approve(client, handle, version)
        status = await handle.query("status", result_type=PipelineStatus)
        print(f"\n=== summary ({time.monotonic() - started:.1f}s) ===")
        print(format_status(status))
        if code == 0:
            result = await handle.result()
            outputs = result.get("outputs", {}) if isinstance(result, dict) else {}
            if outputs:
                print("\npipeline outputs:")
                for key, value in outputs.items():
                    print(f"  {key}: {value}")
            _print_backends(outputs)
            await _print_promotion(client, version)
            print("\n=== triggers: one workflow started by a webhook, one by a schedule ===")
            await show_triggers(client, inputs, approve=approve_waiting, approver=DEMO_APPROVER)
        if fleet is not None and watcher is not None:
            code = max(code, await _print_fleet(client, fleet, watcher))
        return code


async def _start_fleet(client: Client, inputs: dict[str, Any]) -> WorkflowHandle[Any, Any]:
    data = load_yaml(FLEET_FILE.read_text(), str(FLEET_FILE))
    declared = (data.get("spec") or {}).get("inputs") or {}
    handle = await start_pipeline(
        client,
        data,
        {k: v for k, v in inputs.items() if k in declared},
        requested_by=DEMO_REQUESTER,
        source=str(FLEET_FILE),
    )
    print(f"started pipeline run {handle.id} (a cluster upgrade over a fleet, in two waves with gates between)")
    return handle


async def _rollout_status(client: Client, fleet: WorkflowHandle[Any, Any]) -> tuple[str, RolloutStatus] | None:
    try:
        wid = await resolve(client, fleet.id, FLEET_STEP)
        return wid, await client.get_workflow_handle(wid).query("status", result_type=RolloutStatus)
    except (NotFound, RPCError):
        return None  # the rollout has not started yet


async def _watch_fleet(client: Client, fleet: WorkflowHandle[Any, Any]) -> None:
    """One line per change of the rollout: each wave, each gate and why it waits."""
    last = ""
    while True:
        found = await _rollout_status(client, fleet)
        if found is not None:
            st = found[1]
            gated = next((w for w in st.waves if w.state == "gate" and w.pending), None)
            line = st.message + (f" · {gated.pending}" if gated is not None else "")
            if line and line != last:
                print(f"  ⇉ fleet: {line}", flush=True)
                last = line
        await asyncio.sleep(0.5)


async def _print_fleet(client: Client, fleet: WorkflowHandle[Any, Any], watcher: asyncio.Future[None]) -> int:
    """The fleet's waves, gates and shoots once its pipeline ends (exit 1 if it failed)."""
    try:
        result = await fleet.result()
        code = 0 if result.get("state") == "succeeded" else 1
    except WorkflowFailureError as exc:
        print(f"\nfleet pipeline FAILED: {getattr(exc.cause, 'message', exc.cause)}")
        code = 1
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    found = await _rollout_status(client, fleet)
    if found is not None:
        print(f"\n=== fleet: cluster upgrade in two waves (apeiro rollout status {fleet.id}) ===")
        print(format_rollout(found[1], found[0]))
    return code


def _print_backends(outputs: dict[str, Any]) -> None:
    """The site's two racks: one the orchestrator drives through its BMC, one metal-operator owns."""
    provisioned = outputs.get("provisioned") or []
    claimed = outputs.get("claimed") or []
    if not claimed:
        return
    print("\n=== servers: one rack per backend ===")
    print(f"  redfish   {len(provisioned)} provisioned through their BMC (power, BIOS, virtual media), then registered")
    print(f"  ironcore  {len(claimed)} claimed from metal-operator (ServerClaim bound, on): {', '.join(claimed)}")


async def _print_promotion(client: Client, version: str) -> None:
    """The rings and gate outcomes of the site's software promotion."""
    handle = client.get_workflow_handle(promotion_workflow_id(PROMOTION, version))
    try:
        status = await handle.query("status", result_type=PromotionStatus)
    except RPCError:
        return
    print("\n=== promotion: rings and gates ===")
    print(format_promotion(status))


async def _follow_and_approve(client: Client, handle: WorkflowHandle[Any, Any], version: str) -> int:
    seen: dict[str, str] = {}
    result = asyncio.ensure_future(handle.result())
    approved: set[str] = set()
    while not result.done():
        status = await handle.query("status", result_type=PipelineStatus)
        for step in status.steps:
            detail = step.message or step.error or ""
            line = f"  {STATE_MARK[step.state]} {step.name:<22} {step.state.value:<10} {detail}"
            if seen.get(step.name) != line:
                seen[step.name] = line
                print(line, flush=True)
            if step.uses == "promotion.run" and step.state is StepState.RUNNING:
                # The production ring's entry gate waits for a person: the demo is that person.
                for gate in await approve_waiting(client, PROMOTION, version, DEMO_APPROVER):
                    print(f"  → {DEMO_APPROVER} approved promotion gate {gate}", flush=True)
            if step.uses == "core.approval" and step.state is StepState.WAITING and step.name not in approved:
                approved.add(step.name)
                state = await handle.execute_update(
                    "approve",
                    ApprovalDecision(step=step.name, approver=DEMO_APPROVER, comment="approved by the demo"),
                    result_type=ApprovalState,
                )
                print(f"  → {DEMO_APPROVER} approved {step.name} ({state.approvals}/{state.needed})", flush=True)
        await asyncio.wait([result], timeout=0.5)
    try:
        result.result()
    except WorkflowFailureError as exc:
        print(f"\npipeline FAILED: {getattr(exc.cause, 'message', exc.cause)}")
        return 1
    return 0
