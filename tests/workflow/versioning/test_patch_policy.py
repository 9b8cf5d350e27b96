"""The versioning policy of docs/architecture.md ("Changing a workflow"), proved on a small workflow.

Histories recorded from release 1 replay through release 2 with ``workflow.patched`` and fail with
a non-determinism error through release 2 without it; release 3 (``deprecate_patch``) replays the
histories of release 2 but not those of release 1 (which is why the old branch stays until no run
of release 1 is open).
"""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from tests.workflow.versioning.change import NAME, DeprecatedV3, PatchedV2, ReleaseV1, UnguardedV2

pytestmark = pytest.mark.workflow


async def _record(env: WorkflowEnvironment, release: type) -> WorkflowHistory:
    queue = f"policy-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=[release]):
        handle = await env.client.start_workflow(NAME, id=f"policy-{uuid.uuid4().hex[:8]}", task_queue=queue)
        assert await handle.result() == "done"
        return await handle.fetch_history()


async def _replay_failure(history: WorkflowHistory, release: type) -> str | None:
    result = await Replayer(debug_mode=True, workflows=[release]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    return None if result.replay_failure is None else str(result.replay_failure)


async def test_patched_change_replays_old_histories_unguarded_does_not(ts_env: WorkflowEnvironment) -> None:
    v1 = await _record(ts_env, ReleaseV1)
    assert await _replay_failure(v1, PatchedV2) is None
    failure = await _replay_failure(v1, UnguardedV2)
    assert failure is not None and "Nondeterminism" in failure


async def test_deprecated_patch_replays_patched_histories_but_not_release_1(ts_env: WorkflowEnvironment) -> None:
    v1 = await _record(ts_env, ReleaseV1)
    v2 = await _record(ts_env, PatchedV2)
    assert await _replay_failure(v2, DeprecatedV3) is None
    assert await _replay_failure(v2, PatchedV2) is None
    assert await _replay_failure(v1, DeprecatedV3) is not None
