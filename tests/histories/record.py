"""Record workflow histories for the replay test: `python -m tests.histories.record`.

Run it after a deliberate, compatible change to the engine to refresh the saved histories; the
replay test then proves that running workflows of the previous version still replay without
non-determinism errors. Recorded on a fresh dev server from the local landscape.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError

from definitions import queues
from definitions.runs import ApprovalDecision, PipelineRequest, PipelineStatus, StepState
from landscape.landscape import Landscape
from landscape.temporal import TemporalDevServer
from tests.support import pipeline
from workers.config import data_converter
from workers.worker import build_workers

HERE = Path(__file__).resolve().parent

CASES: dict[str, dict[str, Any]] = {
    "dag-approval-wait": pipeline([
        {"name": "plan", "uses": "core.echo", "with": {"values": {"hosts": ["a", "b", "c"]}}},
        {"name": "each", "uses": "core.echo", "needs": ["plan"], "forEach": "steps.plan.outputs.hosts",
         "maxParallel": 2, "with": {"values": {"h": "${{ item }}"}}},
        {"name": "side", "uses": "core.echo", "needs": ["plan"], "when": "inputs.side"},
        {"name": "gate", "uses": "core.approval", "needs": ["each", "side"], "with": {"approvers": ["ops"]}},
        {"name": "pause", "uses": "core.wait", "needs": ["gate"], "with": {"duration": "1s"}},
    ], name="replay-dag", inputs={"side": {"type": "boolean", "default": True}},
        outputs={"n": "size(steps.each.outputs)"}),
    "fan-out-children": pipeline([
        {"name": "fan", "uses": "core.echo", "forEach": "inputs.items", "maxParallel": 30,
         "with": {"values": {"i": "${{ item }}"}}},
    ], name="replay-fanout", inputs={"items": {"type": "array", "default": list(range(60))}}),
    "failure": pipeline([
        {"name": "bad", "uses": "core.wait", "with": {"duration": "${{ inputs.d }}"}},
        {"name": "after", "uses": "core.echo", "needs": ["bad"]},
    ], name="replay-failure", inputs={"d": {"type": "string", "default": "never"}}),
    "continue-as-new": pipeline(
        [{"name": f"s{i}", "uses": "core.echo", **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(20)],
        name="replay-can"),
}

#: Issue 17 behaviour behind workflow.patched: saved as the FIRST run (patch markers, the carry).
LIMIT_CASES: dict[str, dict[str, Any]] = {
    "limits-carry-needed-outputs": pipeline(
        [*({"name": f"s{i}", "uses": "core.echo", "with": {"values": {"i": i, "pad": "x" * 500}},
            **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(20)),
         {"name": "last", "uses": "core.echo", "needs": ["s19"],
          "with": {"values": {"first": "${{ steps.s0.outputs.i }}"}}}],
        name="replay-carry", outputs={"first": "steps.last.outputs.first"}),
}


async def record_limits(client: Client) -> None:
    workers = build_workers(client, [queues.PIPELINE])
    async with workers[0]:
        for name, definition in LIMIT_CASES.items():
            handle = await client.start_workflow(
                "PipelineWorkflow", PipelineRequest(definition=definition, continue_as_new_after=100),
                id=f"replay-{name}", task_queue=queues.PIPELINE)
            try:
                await handle.result()
            except WorkflowFailureError:
                pass
            first = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
            history = await first.fetch_history()
            (HERE / f"{name}.json").write_text(json.dumps(json.loads(history.to_json()), indent=1))
            print(f"recorded {name}: {len(history.events)} events")


async def record(client: Client) -> None:
    workers = build_workers(client, [queues.PIPELINE])
    async with workers[0]:
        for name, definition in CASES.items():
            extra = {"continue_as_new_after": 100} if name == "continue-as-new" else {}
            handle = await client.start_workflow("PipelineWorkflow", PipelineRequest(definition=definition, **extra),
                                                 id=f"replay-{name}", task_queue=queues.PIPELINE)
            if name == "dag-approval-wait":
                while True:
                    st = await handle.query("status", result_type=PipelineStatus)
                    if st.steps[3].state is StepState.WAITING and st.steps[3].message:
                        break
                    await asyncio.sleep(0.1)
                await handle.execute_update("approve", ApprovalDecision(step="gate", approver="ops"))
            try:
                await handle.result()
            except WorkflowFailureError:
                pass
            # The last run holds the newest history (continue-as-new starts new runs).
            history = await client.get_workflow_handle(handle.id).fetch_history()
            (HERE / f"{name}.json").write_text(json.dumps(json.loads(history.to_json()), indent=1))
            print(f"recorded {name}: {len(history.events)} events")
            if name == "fan-out-children":
                child = await client.get_workflow_handle(f"{handle.id}/fan/chunk-0").fetch_history()
                (HERE / "fan-out-chunk.json").write_text(json.dumps(json.loads(child.to_json()), indent=1))
                print(f"recorded fan-out-chunk: {len(child.events)} events")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        landscape = Landscape([TemporalDevServer(headless=True)], state_dir=Path(tmp))
        with landscape.running():
            client = await Client.connect(landscape.part("temporal").endpoints["address"],
                                          data_converter=data_converter())
            await record(client)
            await record_limits(client)


if __name__ == "__main__":
    asyncio.run(main())
