"""The growing chunk schedule and the read-ahead of the blob copy: what a resume repeats, and memory."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from activities.ocm import blobcopy
from activities.ocm.blobcopy import chunk_end, copy_blob
from activities.ocm.chunking import Budget
from activities.ocm.oci import UploadSession
from tests.unit.ocm.test_blob_pipeline import MemoryRegistry, _blob, _clients

KiB, MiB = 1024, 1024 * 1024


def _sizes(size: int, chunk_size: int, first: int | None = blobcopy.FIRST_CHUNK, offset: int = 0) -> list[int]:
    out = []
    while offset < size:
        end = chunk_end(offset, size, chunk_size, first)
        out.append(end - offset)
        offset = end
    return out


def test_chunks_grow_with_what_the_target_holds_up_to_chunk_size() -> None:
    assert [s // MiB for s in _sizes(1024 * MiB, 256 * MiB)] == [16, 16, 32, 64, 128, 256, 256, 256]
    assert [s // MiB for s in _sizes(1024 * MiB, 64 * MiB)] == [16, 16, 32] + [64] * 15
    # A small bound: every chunk is the bound (the 64 KiB chunks of the integration tests).
    assert set(_sizes(3 * MiB, 64 * KiB)) == {64 * KiB}
    # No growth asked for: fixed chunks; the last one is what is left.
    assert _sizes(100 * MiB, 32 * MiB, None) == [32 * MiB] * 3 + [4 * MiB]
    # A resumed upload continues the schedule from the registry's offset.
    assert [s // MiB for s in _sizes(1024 * MiB, 256 * MiB, offset=100 * MiB)] == [100, 200, 256, 256, 112]


@pytest.mark.parametrize("bound", [256 * MiB, 64 * MiB, 512 * KiB])
def test_a_chunk_is_never_more_than_the_bound_nor_more_than_what_is_held(bound: int) -> None:
    """The documented repeat bound: the chunk in flight is at most ``chunk_size`` and at most
    ``max(FIRST_CHUNK, offset)``, so a resume never sends more than that again."""
    size, offset = 1536 * MiB + 123, 0
    while offset < size:
        end = chunk_end(offset, size, bound)
        assert 0 < end - offset <= min(bound, max(blobcopy.FIRST_CHUNK, offset))
        offset = end


class Killed(BaseException):
    """The worker dies: nothing in the copy handles it."""


class KillingRegistry(MemoryRegistry):
    """Takes a few milliseconds to answer a chunk (distribution ``Sync()``s the upload file) and records
    each chunk's size: a PATCH, or the closing PUT that carries the last chunk. Chunk number
    ``kill_at`` kills the copier after the whole body was sent (the registry keeps none of it, as
    behind a proxy that buffers request bodies)."""

    def __init__(self, kill_at: int = 0) -> None:
        super().__init__()
        self.kill_at = kill_at
        self.sends = 0
        self.sizes: list[int] = []

    async def handler(self, req: httpx.Request) -> httpx.Response:  # type: ignore[override]
        if req.method == "PATCH" or (req.method == "PUT" and req.content):
            await asyncio.sleep(0.005)
            self.sends += 1
            if self.sends == self.kill_at:
                raise Killed
            self.sizes.append(len(req.content))
        return super().handler(req)


async def test_growing_chunks_with_read_ahead_copy_the_exact_bytes() -> None:
    reg = KillingRegistry()
    digest, data = _blob(reg, 5 * MiB + 77)
    src, dst = _clients(reg)
    async with src, dst:
        stats = await copy_blob(
            src, "s", dst, "t", digest, chunk_size=2 * MiB, first_chunk=256 * KiB, read_ahead=2 * MiB
        )
    assert reg.blobs[digest] == data and reg.commits == [digest] and reg.posts == 1
    assert reg.sizes == [256 * KiB, 256 * KiB, 512 * KiB, MiB, 2 * MiB, MiB + 77]
    assert reg.patches == 5 and reg.puts == [MiB + 77], "the last chunk is the closing PUT's body"
    assert stats.chunks == 6 and stats.bytes_sent == len(data)
    assert stats.read_ahead > 0, "the next chunk was read while the target answered"
    assert blobcopy.AHEAD_BUDGET.held == 0, "every byte read ahead was handed on"


@pytest.mark.parametrize("kill_at", [1, 2, 3, 4, 5, 6])
async def test_a_killed_copy_resumes_repeating_at_most_the_chunk_in_flight(kill_at: int) -> None:
    """Killed during PATCH ``kill_at``; the next attempt resumes from the last recorded state. The
    bytes at the target are the source's, the blob is committed once from one upload, and what was
    sent twice is the killed chunk only: at most ``chunk_size`` and at most ``max(first, offset)``."""
    first, bound = 256 * KiB, 2 * MiB
    reg = KillingRegistry(kill_at)
    digest, data = _blob(reg, 5 * MiB + 77)
    recorded: list[UploadSession] = []

    def progress(s: UploadSession, _sent: int) -> None:
        recorded.append(UploadSession(s.location, s.offset))

    src, dst = _clients(reg)
    async with src, dst:
        with pytest.raises(Killed):
            await copy_blob(
                src, "s", dst, "t", digest, chunk_size=bound, first_chunk=first, read_ahead=MiB, progress=progress
            )
        held = recorded[-1].offset
        lost = chunk_end(held, len(data), bound, first) - held  # the killed chunk, sent and never stored
        assert lost <= min(bound, max(first, held))
        stats = await copy_blob(
            src, "s", dst, "t", digest, chunk_size=bound, first_chunk=first, read_ahead=MiB, session=recorded[-1]
        )
    assert reg.blobs[digest] == data
    assert reg.commits == [digest] and reg.posts == 1, "one upload, never started over"
    assert stats.resumed_from == held
    assert stats.bytes_sent == len(data) - held
    assert reg.patched_bytes + sum(reg.puts) == len(data), "no byte reached the registry twice"
    assert 0 not in reg.puts, "never an empty closing PUT"
    assert held + lost + stats.bytes_sent <= len(data) + min(bound, max(first, held))
    assert blobcopy.AHEAD_BUDGET.held == 0


async def test_parallel_copies_read_ahead_within_the_process_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = Budget(2 * MiB)
    peak = 0
    take = budget.take

    def watched(n: int) -> bool:
        nonlocal peak
        ok = take(n)
        peak = max(peak, budget.held)
        return ok

    monkeypatch.setattr(budget, "take", watched)
    monkeypatch.setattr(blobcopy, "AHEAD_BUDGET", budget)
    reg = KillingRegistry()
    blobs = [_blob(reg, 3 * MiB + i) for i in range(4)]
    src, dst = _clients(reg)
    async with src, dst:
        got = await asyncio.gather(
            *[
                copy_blob(src, "s", dst, f"t{i}", d, chunk_size=MiB, first_chunk=256 * KiB, read_ahead=2 * MiB)
                for i, (d, _) in enumerate(blobs)
            ]
        )
    assert all(reg.blobs[d] == data for d, data in blobs)
    assert 0 < peak <= 2 * MiB, "four copies read ahead, together within the budget"
    assert sum(s.read_ahead for s in got) > 0
    assert budget.held == 0


@pytest.mark.parametrize("bad", [1024, 5 * 1024 * MiB, "big"])
def test_chunk_size_out_of_range_names_the_field(bad: object) -> None:
    from pydantic import ValidationError

    from definitions.ocm import TransportInput

    base = {
        "source": {"url": "http://127.0.0.1:5000/ocm"},
        "target": {"url": "http://127.0.0.1:5001/ocm"},
        "components": [{"name": "example.apeiro.dev/app", "version": "1.0.0"}],
    }
    assert TransportInput.model_validate(base).chunk_size == blobcopy.DEFAULT_CHUNK
    with pytest.raises(ValidationError) as err:
        TransportInput.model_validate({**base, "chunk_size": bad})
    assert [e["loc"] for e in err.value.errors()] == [("chunk_size",)]


def test_read_ahead_setting_from_the_worker_environment() -> None:
    from activities.ocm.errors import OCMError

    assert blobcopy.read_ahead_setting({}) == blobcopy.READ_AHEAD == 0
    assert blobcopy.read_ahead_setting({blobcopy.READ_AHEAD_ENV: " 16 "}) == 16 * MiB
    for bad in ("-1", "65", "16MiB"):
        with pytest.raises(OCMError, match=f"{blobcopy.READ_AHEAD_ENV} must be a whole number of MiB"):
            blobcopy.read_ahead_setting({blobcopy.READ_AHEAD_ENV: bad})
