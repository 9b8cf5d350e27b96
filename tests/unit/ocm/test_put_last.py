"""The last chunk is the body of the closing ``PUT ?digest=``: no empty PUT, one chunk end fewer, and
a PUT cut off or unanswered resumes like a PATCH (or finds the blob committed)."""

from __future__ import annotations

import pytest

from activities.ocm.blobcopy import copy_blob
from activities.ocm.errors import DigestMismatch
from activities.ocm.oci import UploadSession
from tests.unit.ocm.test_blob_pipeline import SOURCE, MemoryRegistry, _blob, _clients

KiB = 1024


async def test_the_last_chunk_is_the_closing_put_body_and_no_empty_put_is_sent() -> None:
    reg = MemoryRegistry()
    digest, data = _blob(reg, 200 * KiB)
    src, dst = _clients(reg)
    async with src, dst:
        stats = await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB)
    assert reg.blobs[digest] == data and reg.commits == [digest]
    assert reg.patches == 3 and reg.puts == [8 * KiB], "three PATCHes, then the last 8 KiB in the PUT"
    assert stats.chunks == 4 and stats.bytes_sent == len(data)


async def test_without_put_last_the_copy_closes_with_an_empty_put() -> None:
    reg = MemoryRegistry()
    digest, data = _blob(reg, 200 * KiB)
    src, dst = _clients(reg)
    async with src, dst:
        await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB, put_last=False)
    assert reg.blobs[digest] == data and reg.patches == 4 and reg.puts == [0]


async def test_a_one_chunk_blob_is_one_post_and_one_put() -> None:
    reg = MemoryRegistry()
    digest, data = _blob(reg, 50 * KiB)
    src, dst = _clients(reg)
    async with src, dst:
        await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB)
    assert reg.blobs[digest] == data and reg.posts == 1 and reg.patches == 0 and reg.puts == [50 * KiB]


async def test_a_closing_put_cut_off_mid_body_is_sent_again_from_the_registry_offset() -> None:
    reg = MemoryRegistry()
    digest, data = _blob(reg, 200 * KiB)
    reg.drop_puts = {1: False}
    SOURCE.ranges.clear()
    src, dst = _clients(reg)
    async with src, dst:
        stats = await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB)
    assert reg.blobs[digest] == data and reg.commits == [digest] and reg.posts == 1
    assert reg.puts == [8 * KiB, 8 * KiB], "the last chunk sent again, nothing before it"
    assert SOURCE.ranges == [f"bytes={192 * KiB}-{200 * KiB - 1}"], "re-read from the source, only that chunk"
    assert stats.bytes_sent == len(data)


async def test_a_committed_put_whose_answer_was_lost_is_not_sent_again() -> None:
    reg = MemoryRegistry()
    digest, data = _blob(reg, 200 * KiB)
    reg.drop_puts = {1: True}
    src, dst = _clients(reg)
    async with src, dst:
        await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB)
    assert reg.blobs[digest] == data and reg.commits == [digest] and reg.puts == [8 * KiB]


async def test_a_worker_killed_before_the_closing_put_resumes_with_it() -> None:
    """The registry holds every chunk but the last (recorded before the kill): the resumed copy sends
    the last chunk in the PUT; a copy resumed with every byte held closes with an empty PUT."""
    reg = MemoryRegistry()
    digest, data = _blob(reg, 200 * KiB)
    reg.uploads["u7"] = bytearray(data[: 192 * KiB])
    reg.uploads["u8"] = bytearray(data)
    src, dst = _clients(reg)
    async with src, dst:
        stats = await copy_blob(
            src, "s", dst, "t", digest, chunk_size=64 * KiB, session=UploadSession("/v2/t/blobs/uploads/u7", 0)
        )
        assert stats.resumed_from == 192 * KiB and reg.puts == [8 * KiB] and reg.patches == 0
        reg.blobs.clear()
        await copy_blob(
            src, "s", dst, "t2", digest, chunk_size=64 * KiB, session=UploadSession("/v2/t/blobs/uploads/u8", 0)
        )
    assert reg.puts == [8 * KiB, 0] and reg.blobs[digest] == data


async def test_a_tampered_source_is_refused_by_the_closing_put_and_named_by_our_hash() -> None:
    reg = MemoryRegistry()
    digest, data = _blob(reg, 200 * KiB)
    SOURCE.blobs[digest] = data[:-1] + b"x"  # tampered in the last chunk, the one the PUT carries
    src, dst = _clients(reg)
    async with src, dst:
        with pytest.raises(DigestMismatch, match="tampered or corrupt") as err:
            await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB)
    assert not err.value.retryable
    assert not reg.commits and digest not in reg.blobs and reg.puts == [8 * KiB]
