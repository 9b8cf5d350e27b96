"""The ``long-freeze`` and ``long-gates`` scenarios of ``python -m tests.histories.record``. long-freeze: a fleet rollout and a cluster
upgrade held by a freeze past a small history bound, so each continues as new at its freeze point
(patches ``i13-rollout-freeze-continue-as-new`` and ``i13-cluster-freeze-continue-as-new``), then the
freeze ends and both finish."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from definitions import queues

HERE = Path(__file__).resolve().parent
#: The smallest bound the inputs accept: with rechecks every 0.3 s a run continues as new every few seconds.
BOUND = 50


async def runs(client: Client, workflow_id: str, run_id: str | None) -> int:
    """How many runs the chain that started with ``run_id`` has so far."""
    count = 1
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return count
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        count += 1


async def record_long_freeze(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    from activities.freeze import ACTIVITIES as FREEZE_ACTIVITIES
    from definitions.cluster import ClusterCreateInput, ClusterUpgradeInput
    from definitions.freeze import FreezeEnd, FreezeRequest
    from definitions.rollout import RolloutInput, RolloutStatus, WaveApproval
    from tests.histories.record import gardener_worker
    from tests.integration.cluster.test_cluster_workflows import NS, garden, spec
    from tests.support import sandboxed_worker
    from workers.cli.freeze import update
    from workflows.freeze import FreezeWorkflow

    async with (
        gardener_worker(client, prefix, state / "garden-long-freeze") as (queue, api),
        sandboxed_worker(client, queues.PIPELINE, [FreezeWorkflow], FREEZE_ACTIVITIES),
    ):
        ref = garden(api)
        names = ["frozen-a", "frozen-b", "frozen-c"]
        for name in [*names, "frozen-up"]:
            labels = {"fleet": "frozen"} if name in names else {}
            await client.execute_workflow(
                "ClusterCreateWorkflow",
                ClusterCreateInput(cluster=spec(name, version="1.29.10", labels=labels), garden=ref),
                id=f"{prefix}create-{name}",
                task_queue=queue,
            )
        rollout = await client.start_workflow(
            "FleetRolloutWorkflow",
            RolloutInput.model_validate(
                {
                    "operation": "cluster.hibernate",
                    "with": {"enabled": True},
                    "rollout": {
                        "selector": {"namespace": NS, "matchLabels": {"fleet": "frozen"}},
                        "waves": [1, "100%"],
                        "maxInFlight": 2,
                        "gates": [{"type": "approval", "approvers": ["bob"]}],
                    },
                    "garden": ref.model_dump(),
                    "continueAsNewAfter": BOUND,
                }
            ),
            id=f"{prefix}rollout",
            task_queue=queue,
        )
        async with asyncio.timeout(60):
            while True:
                if (await rollout.query("status", result_type=RolloutStatus)).waiting_approvals:
                    break
                await asyncio.sleep(0.2)
        await update(client, "start_freeze", FreezeRequest(by="recorder", reason="long freeze", recheck_seconds=0.3))
        await rollout.execute_update("approve_wave", WaveApproval(wave=1, approver="bob", comment="replay"))
        upgrade = await client.start_workflow(
            "ClusterUpgradeWorkflow",
            ClusterUpgradeInput(
                name="frozen-up", project_namespace=NS, garden=ref, target_version="1.30.8", continue_as_new_after=BOUND
            ),
            id=f"{prefix}upgrade",
            task_queue=queue,
        )
        async with asyncio.timeout(120):  # each has continued as new at least twice
            while True:
                if min([await runs(client, h.id, h.first_execution_run_id) for h in (rollout, upgrade)]) >= 3:
                    break
                await asyncio.sleep(0.5)
        await update(client, "end_freeze", FreezeEnd(by="recorder", reason="over"))
        await rollout.result()
        await upgrade.result()
        for handle, workflow_type in ((rollout, "FleetRolloutWorkflow"), (upgrade, "ClusterUpgradeWorkflow")):
            await save_last_run(client, handle.id, workflow_type, f"long-freeze-{handle.id.removeprefix(prefix)}")


async def save_last_run(client: Client, workflow_id: str, workflow_type: str, case: str) -> None:
    """The chain's last run (it resumed at the freeze point and finished) beside what ``save`` keeps
    (the largest first and continued runs)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    path = HERE / workflow_type / f"{case}-finished.json"
    path.write_text(json.dumps({"workflowId": workflow_id, **json.loads(history.to_json())}, indent=1))
    print(f"recorded {path.relative_to(HERE)}: {len(history.events)} events")


async def record_long_gates(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """A fleet rollout whose gate between waves runs long (15 probes a second apart, then an approval)
    past the small bound: it continues as new at the gate's waits (patch
    ``i13-rollout-gate-continue-as-new-v2``) carrying the open gate's progress, is paused and approved
    across a continue-as-new, then finishes (first, second, largest continued and the finished run)."""
    from definitions.cluster import ClusterCreateInput
    from definitions.rollout import RolloutInput, RolloutStatus, WaveApproval
    from tests.histories.record import gardener_worker
    from tests.integration.cluster.test_cluster_workflows import NS, garden, spec

    async with gardener_worker(client, prefix, state / "garden-long-gates") as (queue, api):
        ref = garden(api)
        for name in ("gated-a", "gated-b"):
            await client.execute_workflow(
                "ClusterCreateWorkflow",
                ClusterCreateInput(cluster=spec(name, labels={"fleet": "gated"}), garden=ref),
                id=f"{prefix}create-{name}",
                task_queue=queue,
            )
        gates = [
            {"type": "httpProbe", "url": f"{api.url}/healthz", "interval": "1s", "consecutiveSuccesses": 15},
            {"type": "approval", "approvers": ["ops", "lead"], "quorum": 2},
        ]
        rollout = await client.start_workflow(
            "FleetRolloutWorkflow",
            RolloutInput.model_validate(
                {
                    "operation": "cluster.hibernate",
                    "with": {"enabled": True},
                    "rollout": {"selector": {"namespace": NS, "matchLabels": {"fleet": "gated"}}, "gates": gates},
                    "garden": ref.model_dump(),
                    "continueAsNewAfter": BOUND,
                }
            ),
            id=f"{prefix}rollout",
            task_queue=queue,
        )
        async with asyncio.timeout(120):
            while True:
                if (await rollout.query("status", result_type=RolloutStatus)).waiting_approvals:
                    break
                await asyncio.sleep(0.2)
        continued = await runs(client, rollout.id, rollout.first_execution_run_id)
        assert continued >= 3, f"the rollout continued as new only {continued - 1} times in its gate"
        await rollout.signal("pause", "recorder")
        await rollout.execute_update("approve_wave", WaveApproval(wave=1, approver="ops", comment="replay"))
        for _ in range(12):  # operator traffic past the bound: the approval gate continues as new
            await rollout.signal("pause", "recorder")
        async with asyncio.timeout(60):
            while True:
                if await runs(client, rollout.id, rollout.first_execution_run_id) > continued:
                    break
                await asyncio.sleep(0.2)
        await rollout.execute_update("approve_wave", WaveApproval(wave=1, approver="lead"))
        await rollout.signal("resume", "recorder")
        await rollout.result()
        await save_last_run(client, rollout.id, "FleetRolloutWorkflow", "long-gates-rollout")
        # the second run: it resumed the probe gate from the carried progress (``save`` keeps the largest)
        first = await client.get_workflow_handle(rollout.id, run_id=rollout.first_execution_run_id).fetch_history()
        second = first.events[-1].workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        history = await client.get_workflow_handle(rollout.id, run_id=second).fetch_history()
        path = HERE / "FleetRolloutWorkflow" / "long-gates-rollout-resumed.json"
        path.write_text(json.dumps({"workflowId": rollout.id, **json.loads(history.to_json())}, indent=1))
        print(f"recorded {path.relative_to(HERE)}: {len(history.events)} events")
