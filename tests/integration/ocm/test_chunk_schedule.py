"""Growing chunks with read-ahead against the real docker-registry: a copy stopped between chunks
resumes from the recorded upload state, sends only the rest, and the target holds the exact bytes."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from activities.ocm import blobcopy
from activities.ocm.blobcopy import chunk_end, copy_blob
from activities.ocm.oci import RegistryClient, UploadSession, push_chunks
from landscape.ocm_example import pseudo_random
from tests.integration.ocm.conftest import Registries

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ocm-registries")]

KiB, MiB = 1024, 1024 * 1024
FIRST, BOUND = 256 * KiB, 2 * MiB


class Stopped(BaseException):
    """The worker dies right after a chunk was accepted and recorded."""


async def test_growing_chunks_resume_from_the_recorded_state_at_the_real_registry(registries: Registries) -> None:
    size = 6 * MiB + 321
    repo = f"chunks-{uuid.uuid4().hex[:6]}"
    async with RegistryClient(registries.source.url) as c:
        digest, _ = await push_chunks(c, f"{repo}/src", pseudo_random(size, seed=repo.encode()))
    recorded: list[UploadSession] = []
    sizes: list[int] = []

    def progress(s: UploadSession, _sent: int) -> None:
        if recorded:
            sizes.append(s.offset - recorded[-1].offset)
        recorded.append(UploadSession(s.location, s.offset))
        if len(recorded) == 5:  # the upload URL, then four chunks: 256 KiB, 256 KiB, 512 KiB, 1 MiB
            raise Stopped

    kw = {"chunk_size": BOUND, "first_chunk": FIRST, "read_ahead": MiB, "allow_mount": False}
    async with registries.source_client() as src, registries.site_client() as dst:
        with pytest.raises(Stopped):
            await copy_blob(src, f"{repo}/src", dst, f"{repo}/dst", digest, progress=progress, **kw)  # type: ignore[arg-type]
        assert sizes == [256 * KiB, 256 * KiB, 512 * KiB, MiB]
        held = recorded[-1].offset
        stats = await copy_blob(src, f"{repo}/src", dst, f"{repo}/dst", digest, session=recorded[-1], **kw)  # type: ignore[arg-type]
        assert stats.resumed_from == held == 2 * MiB
        assert stats.bytes_sent == size - held, "only the rest was sent"
        # The schedule continued from the registry's offset: 2 MiB, 2 MiB, then what is left.
        assert stats.chunks == 3 and chunk_end(held, size, BOUND, FIRST) == held + BOUND
        assert stats.read_ahead > 0
        data = await dst.get_blob(f"{repo}/dst", digest, max_size=size)
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest and len(data) == size
    assert blobcopy.AHEAD_BUDGET.held == 0


@pytest.mark.parametrize("size", [182, 3 * MiB + 5])
async def test_the_last_chunk_is_the_closing_put_at_the_real_registry(registries: Registries, size: int) -> None:
    """distribution takes the last chunk as the body of ``PUT ?digest=``, verifies it and commits."""
    repo = f"putlast-{uuid.uuid4().hex[:6]}"
    async with RegistryClient(registries.source.url) as c:
        digest, _ = await push_chunks(c, f"{repo}/src", pseudo_random(size, seed=repo.encode()))
    async with registries.source_client() as src, registries.site_client() as dst:
        stats = await copy_blob(src, f"{repo}/src", dst, f"{repo}/dst", digest, chunk_size=MiB, allow_mount=False)
        assert stats.bytes_sent == size and stats.chunks == -(-size // MiB)
        assert await dst.blob_size(f"{repo}/dst", digest) == size
