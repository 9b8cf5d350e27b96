"""A landscape freeze holds a promotion ring before it deploys, visibly, until the freeze ends."""

from __future__ import annotations

from pathlib import Path

from activities.freeze import ACTIVITIES as FREEZE_ACTIVITIES
from definitions import queues
from definitions.freeze import FREEZE_WORKFLOW_ID, FreezeEnd, FreezeRequest, FreezeState
from tests.support import sandboxed_worker
from tests.workflow.promotion.conftest import Harness, definition
from workers.cli.freeze import handle
from workflows.freeze import FreezeWorkflow


async def test_ring_waits_while_frozen_then_deploys(harness: Harness, tmp_path: Path) -> None:
    client = harness.client
    async with sandboxed_worker(client, queues.PIPELINE, [FreezeWorkflow], FREEZE_ACTIVITIES):
        freeze = await handle(client)
        harness.started.append(FREEZE_WORKFLOW_ID)
        await freeze.execute_update(
            "start_freeze",
            FreezeRequest(reason="incident 4711", by="alice", recheck_seconds=60),
            result_type=FreezeState,
        )
        data = definition(tmp_path, approval=False)
        h = await harness.start(data, "1.2.0")
        st = await harness.wait_for(h, lambda s: "frozen by alice" in s.message)
        assert "incident 4711" in st.message and st.rings[0].pending.startswith("deploy 1.2.0 to ring dev: waiting")
        assert harness.world.deployments == []  # nothing deployed while frozen
        await freeze.execute_update("end_freeze", FreezeEnd(by="alice"), result_type=FreezeState)
        await harness.wait_for(h, lambda s: bool(harness.world.deployments))
        assert harness.world.deployments[0][1] == "1.2.0"
