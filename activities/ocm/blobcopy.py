"""Copy one blob between registries at wire speed: a bounded pipeline of chunks, resumable.

Per blob, a producer reads chunk n+1 from the source and hashes it in a thread (hashlib releases the
GIL) while chunk n uploads, so the target never waits for the source; memory holds at most
``read_ahead + 1`` chunks per copy and ``APEIRO_OCM_BUFFER_MIB`` across all copies of a worker
process. The upload URL and offset are the resumable state (``UploadSession``); the registry's own
``Range`` answer is the truth on resume and after a connection dropped mid-chunk, so a dropped
connection costs at most that chunk again, never the blob.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from activities.ocm.errors import DigestMismatch, RegistryError
from activities.ocm.oci import DEFAULT_CHUNK, CopyStats, RegistryClient, UploadSession

ProgressFn = Callable[[UploadSession, int], Awaitable[None] | None]

#: Chunks read and hashed ahead of the one being uploaded. One is enough to keep the upload busy
#: (reading a chunk from the source is faster than sending it); each costs ``chunk_size`` of memory.
READ_AHEAD = 1
#: How often one chunk is re-sent after the connection to the target dropped mid-chunk.
CHUNK_RESENDS = 3


class BufferBudget:
    """Bytes of blob chunks one worker process holds at once, across all its parallel blob copies.

    Each copy needs one chunk to make progress and ``read_ahead`` more to overlap reading with
    uploading; with many copies in parallel this caps the worker's memory (a chunk is taken before it
    is read and given back once the target accepted it, so no copy waits on another's progress).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._cond = asyncio.Condition()

    async def take(self, n: int) -> int:
        n = min(n, self.limit)  # a chunk larger than the budget still goes, alone
        async with self._cond:
            await self._cond.wait_for(lambda: self.used + n <= self.limit)
            self.used += n
            self.peak = max(self.peak, self.used)
        return n

    async def give(self, n: int) -> None:
        if n:
            async with self._cond:
                self.used -= n
                self._cond.notify_all()


_BUDGETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BufferBudget] = weakref.WeakKeyDictionary()


def buffer_budget() -> BufferBudget:
    """The process's budget (``APEIRO_OCM_BUFFER_MIB``, default 32 MiB), one per event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _BUDGETS:
        _BUDGETS[loop] = BufferBudget(int(os.environ.get("APEIRO_OCM_BUFFER_MIB", "32")) * 1024 * 1024)
    return _BUDGETS[loop]


@dataclass
class _Chunk:
    pieces: list[bytes]
    size: int
    last: bool = False
    #: Bytes of the process's buffer budget this chunk holds (given back once it is sent).
    budget: int = 0


def _hash_pieces(hasher: Any, pieces: list[bytes]) -> None:
    for p in pieces:
        hasher.update(p)


def _skip(pieces: list[bytes], n: int) -> list[bytes]:
    """``pieces`` without their first ``n`` bytes (no copy of the pieces kept whole)."""
    out: list[bytes] = []
    for p in pieces:
        if n >= len(p):
            n -= len(p)
            continue
        out.append(p[n:] if n else p)
        n = 0
    return out


async def _read_chunks(
    src: RegistryClient,
    src_repo: str,
    digest: str,
    chunk_size: int,
    skip: int,
    hasher: Any,
    out: asyncio.Queue[_Chunk | Exception],
    stats: CopyStats,
    budget: BufferBudget,
) -> None:
    """Producer: stream the source, hash each chunk in a thread (hashlib releases the GIL, so hashing
    overlaps the upload on another core), queue the bytes past ``skip``. Ends with a ``last`` chunk
    (possibly empty) once every byte is hashed; an error is queued instead of raised. Each chunk
    takes its size from the process's buffer budget before it is read."""
    held = 0
    try:
        pos = 0
        pending: list[bytes] = []
        pending_size = 0
        held = await budget.take(chunk_size)
        async with src.blob_stream(src_repo, digest) as resp:
            async for piece in resp.aiter_bytes(chunk_size=min(chunk_size, 1024 * 1024)):
                pending.append(piece)
                pending_size += len(piece)
                if pending_size >= chunk_size:
                    await asyncio.to_thread(_hash_pieces, hasher, pending)
                    send = _skip(pending, max(0, skip - pos))
                    pos += pending_size
                    pending, pending_size = [], 0
                    if pos > skip:
                        chunk, held = _Chunk(send, sum(len(p) for p in send), budget=held), 0
                        await out.put(chunk)
                        held = await budget.take(chunk_size)
        await asyncio.to_thread(_hash_pieces, hasher, pending)
        send = _skip(pending, max(0, skip - pos))
        pos += pending_size
        stats.size = pos
        chunk, held = _Chunk(send, sum(len(p) for p in send), last=True, budget=held), 0
        await out.put(chunk)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # handed to the consumer, which raises it in its own frame
        await out.put(exc)
    finally:
        await asyncio.shield(budget.give(held))


async def _send_chunk(dst: RegistryClient, dst_repo: str, session: UploadSession, chunk: _Chunk) -> None:
    """PATCH one chunk; when the connection drops mid-chunk, ask the registry where the upload stands
    (``GET`` on the upload URL) and send only what it does not hold. The chunk is still in memory, so a
    dropped connection costs at most this chunk again, never the blob."""
    pieces, start = chunk.pieces, session.offset
    for resend in range(CHUNK_RESENDS + 1):
        try:
            size = sum(len(p) for p in pieces)
            if size:
                session.location = await dst.upload_chunk(session.location, dst_repo, pieces, session.offset)
                session.offset += size
            return
        except RegistryError:
            if resend == CHUNK_RESENDS:
                raise
            status = await dst.upload_status(session.location, dst_repo)
            if status is None:
                raise RegistryError(
                    f"the target discarded upload {session.location} after a dropped connection; "
                    "the blob copy starts over"
                ) from None
            held, session.location = status
            if not start <= held <= start + chunk.size:
                raise RegistryError(
                    f"the target holds {held} bytes of an upload expected at {start}..{start + chunk.size}"
                ) from None
            session.offset = held
            pieces = _skip(chunk.pieces, held - start)


async def copy_blob(
    src: RegistryClient,
    src_repo: str,
    dst: RegistryClient,
    dst_repo: str,
    digest: str,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    session: UploadSession | None = None,
    progress: ProgressFn | None = None,
    allow_mount: bool = True,
    read_ahead: int = READ_AHEAD,
) -> CopyStats:
    """Stream one blob from ``src`` to ``dst``, resumable, hashing on the fly.

    A bounded pipeline: a producer reads and hashes chunk n+1 (up to ``read_ahead`` chunks ahead)
    while chunk n is being uploaded, so memory holds at most ``read_ahead + 1`` chunks and the target
    never waits for the source. ``progress(session, bytes_sent)`` runs after every chunk the target
    accepted; it must not block for long (the activity hands the state to a background recorder).

    ``session`` resumes an upload an earlier attempt started: the registry's ``Range`` decides the
    offset. Bytes before it are read from the source again (to rebuild the hash) but not sent again.
    """
    stats = CopyStats(digest=digest)
    size = await dst.blob_size(dst_repo, digest)
    if size is not None:
        stats.skipped, stats.size = True, size
        if session is not None:
            await dst.cancel_upload(session.location, dst_repo)
        return stats
    if session is not None:
        status = await dst.upload_status(session.location, dst_repo)
        if status is None:
            session = None
        else:
            session.offset, session.location = status
    if session is None:
        if allow_mount and src.host == dst.host and src_repo != dst_repo:
            loc = await dst.mount_blob(dst_repo, digest, src_repo)
            if loc is None:
                stats.mounted = True
                stats.size = await dst.blob_size(dst_repo, digest) or 0
                return stats
            session = UploadSession(loc, 0)
        else:
            session = UploadSession(await dst.start_upload(dst_repo), 0)
    stats.resumed_from = session.offset
    if progress is not None:  # the upload URL exists from now on: record it before the first byte
        r = progress(session, 0)
        if r is not None:
            await r
    hasher = hashlib.sha256()
    budget = buffer_budget()
    queue: asyncio.Queue[_Chunk | Exception] = asyncio.Queue(maxsize=max(1, read_ahead))
    reader = asyncio.create_task(
        _read_chunks(src, src_repo, digest, chunk_size, session.offset, hasher, queue, stats, budget)
    )
    item: _Chunk | Exception | None = None
    try:
        while True:
            item = await queue.get()
            if isinstance(item, Exception):
                raise item
            if item.last:
                break
            await _send_chunk(dst, dst_repo, session, item)
            # Free the bytes now: the reader's and this loop's references to the chunk outlive the send
            # (until their next chunk), which would hold one more chunk per copy than the budget counts.
            item.pieces.clear()
            await budget.give(item.budget)
            item.budget = 0
            stats.bytes_sent += item.size
            stats.chunks += 1
            if progress is not None:
                r = progress(session, stats.bytes_sent)
                if r is not None:
                    await r
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            await dst.cancel_upload(session.location, dst_repo)
            raise DigestMismatch(
                f"blob {src_repo}@{digest} from {src.host} has content digest {actual}; "
                "the source registry serves tampered or corrupt data"
            )
        await dst.finish_upload(session.location, dst_repo, digest, item.pieces)
        stats.bytes_sent += item.size
        if item.size:
            stats.chunks += 1
    except (httpx.TransportError, httpx.StreamError) as exc:
        # A dropped source connection mid-stream: retryable; the next attempt resumes at the recorded offset.
        raise RegistryError(
            f"blob {digest} interrupted at byte {session.offset} ({type(exc).__name__}: {exc}); the upload will resume"
        ) from None
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        leftovers = [item] if isinstance(item, _Chunk) else []
        while not queue.empty():
            left = queue.get_nowait()
            if isinstance(left, _Chunk):
                leftovers.append(left)
        for chunk in leftovers:
            await asyncio.shield(budget.give(chunk.budget))
            chunk.budget = 0
    return stats
