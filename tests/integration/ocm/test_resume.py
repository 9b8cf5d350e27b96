"""A worker killed in the middle of a large blob: the next attempt resumes the upload."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from activities.ocm.layout import RepoBase
from definitions.ocm import ComponentVersionRef, RepositorySpec, TransportInput, TransportResult
from landscape import ocm_example as ex
from landscape.landscape import Landscape
from tests.integration.ocm.conftest import Registries
from tests.integration.ocm.slow_worker import spawn, transport_worker

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ocm-registries")]

REPO = Path(__file__).resolve().parents[3]
CHUNK = 64 * 1024


async def heartbeat_offset(client: Client, workflow_id: str) -> int:
    desc = await client.get_workflow_handle(workflow_id).describe()
    best = 0
    for pa in desc.raw_description.pending_activities:
        if pa.activity_type.name != "ocm.copy_blob" or not pa.heartbeat_details.payloads:
            continue
        details = await client.data_converter.decode(pa.heartbeat_details.payloads)
        if details and isinstance(details[-1], dict):
            best = max(best, int(details[-1].get("offset", 0)))
    return best


async def test_worker_killed_mid_blob_resumes(
    dev_client: Client, dev_landscape: Landscape, registries: Registries, task_queue: str, target_url: str
) -> None:
    src = RepoBase.parse(f"{registries.source.url}/big-{uuid.uuid4().hex[:6]}")
    big = 3 * 1024 * 1024
    await ex.push_example(f"{src.registry_url}/{src.prefix}", big_blob=big)
    inp = TransportInput(
        source=RepositorySpec(url=f"{registries.source.url}/{src.prefix}"),
        target=RepositorySpec(
            url=target_url,
            username="apeiro",
            password_ref="env:APEIRO_TEST_SITE_PASSWORD",
            ca_bundle=registries.site.endpoints["ca_bundle"],
        ),
        components=[ComponentVersionRef(name=ex.MAIN, version=ex.VERSION)],
        recursive=False,
        chunk_size=CHUNK,
        heartbeat_timeout_s=3,
        parallel_blobs=1,
    )
    address = dev_landscape.part("temporal").endpoints["address"]
    proc = spawn(address, task_queue, 1.0)  # a separate worker process we can SIGKILL
    try:
        assert proc.stdout is not None
        wid = f"resume-{uuid.uuid4().hex[:8]}"
        handle = await dev_client.start_workflow(
            "ComponentTransportWorkflow", inp, id=wid, task_queue=task_queue, result_type=TransportResult
        )
        # The slow worker prints "chunk OFFSET" when it is about to send a chunk, then waits a second
        # before sending it. The previous chunk's progress is recorded in the background meanwhile:
        # once the heartbeat shows it, kill the worker there, in the middle of the blob.
        while True:
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, "the slow worker exited before uploading"
            if line.startswith(b"chunk ") and int(line.split()[1]) >= 512 * 1024:
                break
        seen = 0
        for _ in range(16):
            seen = await heartbeat_offset(dev_client, wid)
            if seen >= 512 * 1024:
                break
            await asyncio.sleep(0.05)
        assert seen >= 512 * 1024, "the upload progress was not recorded in a heartbeat"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    async with transport_worker(dev_client, task_queue):
        result = await handle.result()
    version = result.versions[0]
    assert version.outcome == "copied"
    # The new attempt started from what the registry already held, at least the last heartbeat's offset;
    # only the chunk in flight at the kill can have been sent twice.
    assert version.bytes_resumed >= seen
    # This run sent the rest of the big blob (plus the few small blobs), not the part already uploaded.
    small = 16 * 1024
    assert big - version.bytes_resumed <= version.bytes_sent <= big - version.bytes_resumed + small
