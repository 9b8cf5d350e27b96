"""The parallel blob copy through a registry that throttles and drops connections mid-chunk."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from temporalio.client import Client

from activities.ocm.layout import RepoBase
from definitions.ocm import ComponentVersionRef, RepositorySpec, TransportInput, TransportResult
from landscape.ocm_bulk import BULK, push_bulk
from landscape.ocm_example import VERSION
from tests.integration.ocm.conftest import Registries
from tests.integration.ocm.dropping_proxy import dropping_proxy

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ocm-registries")]

MiB = 1024 * 1024
CHUNK = 256 * 1024


async def test_throttled_and_dropped_parallel_copy_is_exact_and_never_starts_a_blob_over(
    dev_client: Client, ocm_worker: str, registries: Registries
) -> None:
    src = RepoBase.parse(f"{registries.source.url}/bulk-{uuid.uuid4().hex[:6]}")
    digests = await push_bulk(f"{registries.source.url}/{src.prefix}", count=4, size=2 * MiB)
    prefix = f"par-{uuid.uuid4().hex[:6]}"
    with dropping_proxy(registries.site.url, registries.site.endpoints["ca_bundle"], drop_put_every=2) as proxy:
        inp = TransportInput(
            source=RepositorySpec(url=f"{registries.source.url}/{src.prefix}"),
            target=RepositorySpec(
                url=f"{proxy.url}/{prefix}", username="apeiro", password_ref="env:APEIRO_TEST_SITE_PASSWORD"
            ),
            components=[ComponentVersionRef(name=BULK, version=VERSION)],
            chunk_size=CHUNK,
            parallel_blobs=4,
        )
        result = await dev_client.execute_workflow(
            "ComponentTransportWorkflow",
            inp,
            id=f"par-{uuid.uuid4().hex[:8]}",
            task_queue=ocm_worker,
            result_type=TransportResult,
        )
    assert [v.outcome for v in result.versions] == ["copied"]
    assert proxy.drops >= 3, "connections were dropped mid-chunk"
    assert proxy.throttled >= 3, "the registry throttled"
    # Each blob's last chunk is the closing PUT's body; every second such PUT was dropped and sent again.
    assert proxy.put_drops >= 2 and proxy.chunk_puts >= len(digests) + proxy.put_drops
    repo = RepoBase.parse(f"{registries.site.url}/{prefix}").component_repo(BULK)
    # Committed exactly once each, from one upload that never started over.
    for d in digests:
        assert proxy.commits[(repo, d)] == 1
        uploads = [uid for uid, dg in proxy.upload_of.items() if dg == d]
        assert len(uploads) == 1
        assert proxy.forwarded[uploads[0]] == 2 * MiB, "every byte reached the registry once"
    # Every payload blob sent once (a dropped chunk is re-sent, but never reached the registry before).
    assert result.versions[0].bytes_resumed == 0
    # The bytes at the target are the source's.
    async with registries.site_client() as site, registries.source_client() as source:
        for d in digests:
            h = hashlib.sha256()
            async with site.blob_stream(repo, d) as resp:
                async for piece in resp.aiter_bytes():
                    h.update(piece)
            assert "sha256:" + h.hexdigest() == d
            assert await site.blob_size(repo, d) == await source.blob_size(src.component_repo(BULK), d)
