"""Blobs of every version start at once, largest first; histories from before still replay."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from definitions.ocm import TransportResult
from tests.workflow.ocm.overlap_fakes import (
    TwoVersions,
    replay_failure,
    start_transport,
    transport_input,
    transport_worker,
)
from workflows.transport import PATCH_EARLY_MANIFESTS, PATCH_OVERLAP, PATCH_PREPARE

pytestmark = pytest.mark.workflow

HISTORIES = Path(__file__).resolve().parent / "histories"


def patch_ids(path: Path) -> list[str]:
    """The ``workflow.patched`` ids recorded in a saved history, in order."""
    ids = []
    for ev in json.loads(path.read_text())["events"]:
        marker = ev.get("markerRecordedEventAttributes") or {}
        if marker.get("markerName") == "core_patch":
            data = marker["details"]["patch-data"]["payloads"][0]["data"]
            ids.append(json.loads(base64.b64decode(data))["id"])
    return ids


async def transport_and_history(
    ts_env: WorkflowEnvironment, fakes: TwoVersions
) -> tuple[TransportResult, WorkflowHistory]:
    """One transport over ``fakes`` with two blobs at once: its result and its history."""
    async with transport_worker(ts_env, fakes.activities()) as queue:
        handle = await start_transport(ts_env, queue, transport_input(2))
        return await handle.result(), await handle.fetch_history()


async def test_largest_blob_first_and_references_finalised_while_it_copies(ts_env: WorkflowEnvironment) -> None:
    fakes = TwoVersions()
    result, history = await transport_and_history(ts_env, fakes)
    ev = fakes.events
    # parallel_blobs=2: the big blob is in the first pair the workflow schedules (which of the two the
    # worker starts first is up to its thread pool).
    assert "start big" in [e for e in ev if e.startswith("start")][:2], ev
    assert ev.index("finalise acme/base prepared") < ev.index("done big"), "the reference is published meanwhile"
    assert ev.index("done big") < ev.index("manifests") < ev.index("finalise acme/app prepared"), "children first"
    assert [v.outcome for v in result.versions] == ["copied", "copied"]
    assert result.versions[1].bytes_sent == 10**9 + 40 and result.blobs_copied == 6
    assert await replay_failure(history) is None


async def test_manifests_copied_while_the_large_blob_of_another_repository_copies(ts_env: WorkflowEnvironment) -> None:
    """An OCI image's manifest needs only the image's blobs: it is copied before the version's large local
    blob (another repository) is at the target; the version is finalised after both."""
    fakes = TwoVersions(image_repo="img")
    result, history = await transport_and_history(ts_env, fakes)
    ev = fakes.events
    assert all(ev.index(f"done {i}") < ev.index("manifests") for i in range(1, 5)), "the image's blobs first"
    assert ev.index("manifests") < ev.index("done big") < ev.index("finalise acme/app prepared"), ev
    assert [v.outcome for v in result.versions] == ["copied", "copied"] and result.blobs_copied == 6
    assert await replay_failure(history) is None


async def test_descriptors_prepared_while_the_large_blob_copies(ts_env: WorkflowEnvironment) -> None:
    """Each version's descriptor is signed and uploaded while the big blob copies (references first), so
    finalising after it only writes the manifest: finalise gets what prepare answered."""
    fakes = TwoVersions()
    result, history = await transport_and_history(ts_env, fakes)
    ev = fakes.events
    # Scheduled references first; which the worker starts first is up to its thread pool.
    assert max(ev.index("prepare acme/base"), ev.index("prepare acme/app")) < ev.index("done big"), ev
    assert ev[-1] == "finalise acme/app prepared", ev
    assert [v.outcome for v in result.versions] == ["copied", "copied"]
    assert await replay_failure(history) is None
    if os.environ.get("APEIRO_RECORD_HISTORIES"):  # as tests/workflow/test_repair.py records its history
        (HISTORIES / "transport-prepared.json").write_text(history.to_json())


async def test_transport_with_descriptors_prepared_replays() -> None:
    """Recorded by the test above (all three patches in its markers): a guard for later changes."""
    path = HISTORIES / "transport-prepared.json"
    history = WorkflowHistory.from_json("transport-prepared", path.read_text())
    assert patch_ids(path) == [PATCH_OVERLAP, PATCH_EARLY_MANIFESTS, PATCH_PREPARE]
    assert await replay_failure(history) is None


async def test_transport_with_early_manifests_replays() -> None:
    """Recorded before ``ocm.prepare_version`` existed (the first two patches in its markers): it must
    replay unchanged, finalising signing itself."""
    path = HISTORIES / "transport-early-manifests.json"
    assert patch_ids(path) == [PATCH_OVERLAP, PATCH_EARLY_MANIFESTS]
    history = WorkflowHistory.from_json("transport-early-manifests", path.read_text())
    assert await replay_failure(history) is None


async def test_transport_started_before_the_overlap_replays() -> None:
    """Recorded with the version-by-version workflow: it must replay unchanged (``workflow.patched``)."""
    path = HISTORIES / "transport-sequential.json"
    history = WorkflowHistory.from_json("transport-sequential", path.read_text())
    failure = await replay_failure(history)
    assert failure is None, failure
    assert len(history.events) > 40


async def test_a_blob_two_versions_share_is_copied_once(ts_env: WorkflowEnvironment) -> None:
    """The same image blob into the same repository for two versions: one copy, the other waits for it."""
    fakes = TwoVersions(shared=True)
    async with transport_worker(ts_env, fakes.activities()) as queue:
        result = await (await start_transport(ts_env, queue, transport_input(4))).result()
    assert fakes.events.count("start 0") == 1, fakes.events
    assert [v.blobs_copied for v in result.versions] == [1, 5]
