"""Copy one blob between registries at wire speed: chunks streamed from the source, resumable.

One GET streams the source blob once, in order; each chunk of the upload is a PATCH whose body is
the next part of that stream, handed from the source connection to the target one piece by piece
(``PIECE``), as a raw streaming copy does. Nothing is buffered per chunk, so chunks can be large at no
memory cost, and many copies can run in parallel in one worker. SHA-256 runs on each piece in the
event loop's thread, as the raw copy does (``hash_in_thread`` hashes it in a thread while the loop
sends it: faster on an idle machine, slower on a busy one, where the thread hop per piece costs more
than the overlap gains).

Chunk schedule (``chunk_end``): distribution ``Sync()``s the upload file at the end of every PATCH
before it answers, and nothing flows meanwhile, so every chunk end costs a wait the raw copy (one
streaming PUT) pays once. Chunks therefore grow with what the target holds: 16, 16, 32, 64, 128,
256 MiB..., up to ``chunk_size`` (default 256 MiB: 8 chunk ends per GiB instead of 16 at a fixed
64 MiB). A resume (after a crash, or a dropped connection behind a proxy that buffers bodies) sends
at most the chunk in flight again: at most ``chunk_size`` bytes, and at most as many as the target
already held (at least ``FIRST_CHUNK``), so a copy killed early loses little.

Read-ahead (off unless the worker sets ``APEIRO_OCM_READ_AHEAD_MIB``, e.g. 16): while the target
finishes a chunk, the next chunk's first bytes are read from the source and hashed into memory (all
copies of a process together at most ``AHEAD_BUDGET``, 32 MiB), and the next PATCH sends them first:
the source read and the hashing overlap the target's chunk end instead of following it. On a busy
machine it bought nothing measurable (docs/performance.md) and cost ~9 MiB of worker RSS.

The last chunk is the body of the closing ``PUT <location>?digest=`` (``put_last``; the OCI
distribution spec allows it): one request and one chunk end fewer per blob than PATCH + empty PUT.
The registry checks the digest before it commits and refuses a mismatch (``DigestMismatch`` to us);
our own hash of the source is compared after the PUT as before it: a refused PUT with a source hash
that differs is reported as tampered source data. A PUT cut off is resumed like a PATCH (the
registry's upload status), unless the target already holds the blob (only the answer was lost).

The upload URL and offset are the resumable state (``UploadSession``); the registry's own ``Range``
answer is the truth on resume and after a connection dropped mid-chunk. A chunk that must be sent
again is read again from the source with a ``Range`` GET (only the part the target does not hold),
so a dropped connection costs at most that chunk again, never the blob.

distribution (docker-registry) keeps the bytes of a PATCH whose connection dropped, and then refuses
(and discards) the upload when it is addressed with the URL from before that PATCH: its URL carries
the offset it expects. Resume there works from the last completed PATCH, i.e. when the drop or the
worker's death fell between two chunks; a registry that answers the upload's status from what it
holds (as the OCI distribution spec describes) resumes from any byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from activities.ocm.chunking import (
    DEFAULT_CHUNK,
    FIRST_CHUNK,
    READ_AHEAD,
    Budget,
    MiB,
    chunk_end,
)
from activities.ocm.chunking import READ_AHEAD_ENV as READ_AHEAD_ENV  # re-exported
from activities.ocm.chunking import read_ahead_setting as read_ahead_setting  # re-exported
from activities.ocm.errors import DigestMismatch, RegistryError
from activities.ocm.oci import CopyStats, RegistryClient, StreamedBody, UploadSession

ProgressFn = Callable[[UploadSession, int], Awaitable[None] | None]

#: Bytes handed from the source connection to the target one at a time. The event loop reads a socket
#: at most 256 KiB at a time (uvloop, asyncio), so larger pieces are joined from several reads: one
#: more copy of every byte and ~3 MiB more per parallel copy (1 MiB pieces: eight parallel 100 MiB
#: copies peaked at 129 MiB RSS in a fresh process, 256 KiB at 105, at no more CPU; docs/performance.md).
PIECE = 256 * 1024
#: How often one chunk is re-sent after the connection to the target dropped mid-chunk.
CHUNK_RESENDS = 3


#: Bytes read from the source's socket at a time (httpcore reads 64 KiB, often less is waiting: a GiB
#: then takes 16-33k trips through the HTTP stack, the largest CPU cost of the copier after SHA-256).
SOURCE_READ = PIECE


def read_larger(resp: httpx.Response, size: int = SOURCE_READ) -> None:
    """Let the HTTP/1.1 connection under the streamed answer ``resp`` read its socket ``size`` bytes at
    a time. Best effort: the path goes through httpx/httpcore internals; when it is not there (another
    transport, HTTP/2, a changed httpcore) nothing changes."""
    obj: object = resp.stream
    for _ in range(6):  # httpx's bound stream -> its response stream -> the pool's -> the connection's
        if isinstance(getattr(obj, "READ_NUM_BYTES", None), int):
            obj.READ_NUM_BYTES = size  # type: ignore[attr-defined]
            return
        obj = next((getattr(obj, a) for a in ("_stream", "_httpcore_stream", "_connection") if hasattr(obj, a)), None)


#: Read-ahead of all copies in one process: with ``parallel_blobs`` copies, at most this is buffered.
AHEAD_BUDGET = Budget(32 * MiB)


class SourceFailed(RegistryError):
    """The source stream broke or ended early while a chunk was being sent (retryable: the next
    attempt resumes at the recorded offset)."""


class SourceBlob:
    """The source blob, streamed once in order and hashed as it streams.

    ``taken`` bytes have been handed out of the stream; a range before that is read again from the
    source with a ``Range`` GET (``body``) when a chunk must be re-sent, and is not hashed again.

    Read-ahead: when a chunk's last byte is handed out, up to ``read_ahead`` bytes of the next chunk
    are read (and hashed) into memory while the target finishes the chunk (distribution ``Sync()``s the
    upload file before it answers), within the process-wide ``AHEAD_BUDGET``; the next chunk's body
    sends them first. ``sent_at`` is when the last chunk's last byte was handed out.
    """

    def __init__(
        self, src: RegistryClient, repo: str, digest: str, *, hash_in_thread: bool = True, read_ahead: int = 0
    ) -> None:
        self.src, self.repo, self.digest = src, repo, digest
        self.hash_in_thread = hash_in_thread
        self.read_ahead = read_ahead
        self.hasher = hashlib.sha256()
        self.size = 0
        self.taken = 0
        self.sent_at = 0.0
        self.ahead_read = 0  # bytes read ahead in total (statistics)
        self._left = b""  # read and hashed, not yet handed out
        self._ahead: deque[bytes] = deque()  # read ahead and hashed, after _left
        self._ahead_bytes = 0
        self._ahead_error: SourceFailed | None = None
        self._ahead_task: asyncio.Task[None] | None = None
        self._ahead_stop = False
        self._pieces: AsyncIterator[bytes] | None = None
        self._hashing: asyncio.Future[None] | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> SourceBlob:
        resp = await self._stack.enter_async_context(self.src.blob_stream(self.repo, self.digest))
        length = resp.headers.get("content-length", "")
        # A proxy may stream the answer without its length (chunked): then the HEAD answer says it.
        size = int(length) if length.isdigit() else await self.src.blob_size(self.repo, self.digest)
        if size is None:
            await self._stack.aclose()
            raise RegistryError(f"source {self.src.host} does not say how large blob {self.digest} is")
        self.size = size
        read_larger(resp)
        self._pieces = resp.aiter_bytes(PIECE)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_read_ahead()
        AHEAD_BUDGET.give(self._ahead_bytes)
        self._ahead.clear()
        self._ahead_bytes = 0
        if self._hashing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._hashing)
        await self._stack.aclose()

    async def _read(self) -> bytes:
        """The next piece of the stream, its hashing started (and the previous piece's finished)."""
        assert self._pieces is not None
        try:
            piece = await anext(self._pieces, b"")
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise SourceFailed(
                f"source {self.src.host} broke off blob {self.digest} at byte {self.taken} ({type(exc).__name__})"
            ) from None
        if self._hashing is not None:
            await self._hashing  # one hasher, fed in order
            self._hashing = None
        if piece:
            if self.hash_in_thread and len(piece) >= 64 * 1024:
                self._hashing = asyncio.get_running_loop().run_in_executor(None, self.hasher.update, piece)
            else:
                self.hasher.update(piece)
        return piece

    async def _next(self) -> bytes:
        """The next piece after ``_left``: read ahead before, or from the stream."""
        if self._ahead:
            piece = self._ahead.popleft()
            self._ahead_bytes -= len(piece)
            AHEAD_BUDGET.give(len(piece))
            return piece
        if self._ahead_error is not None:
            raise self._ahead_error
        return await self._read()

    async def _read_ahead(self) -> None:
        try:
            while (
                not self._ahead_stop
                and self._ahead_bytes < self.read_ahead
                and self.taken + len(self._left) + self._ahead_bytes < self.size
                and AHEAD_BUDGET.take(PIECE)
            ):
                piece = b""
                try:
                    piece = await self._read()
                finally:
                    AHEAD_BUDGET.give(PIECE - len(piece))  # the piece's bytes stay taken until handed out
                if not piece:
                    break
                self._ahead.append(piece)
                self._ahead_bytes += len(piece)
                self.ahead_read += len(piece)
        except SourceFailed as exc:
            self._ahead_error = exc

    def _start_read_ahead(self) -> None:
        if self.read_ahead > 0 and self._ahead_task is None:
            self._ahead_stop = False
            self._ahead_task = asyncio.create_task(self._read_ahead())

    async def stop_read_ahead(self) -> None:
        """Let the read-ahead finish the piece it reads, and stop (before anything else reads)."""
        if self._ahead_task is not None:
            self._ahead_stop = True
            task, self._ahead_task = self._ahead_task, None
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                task.cancel()
                raise

    async def stream(self, n: int) -> AsyncIterator[bytes]:
        """The next ``n`` bytes of the stream, in pieces."""
        while n > 0:
            if not self._left:
                self._left = await self._next()
                if not self._left:
                    raise SourceFailed(
                        f"source {self.src.host} ended blob {self.digest} at byte {self.taken} of {self.size}"
                    )
            out = self._left[:n] if len(self._left) > n else self._left
            self._left = self._left[len(out) :] if len(out) < len(self._left) else b""
            self.taken += len(out)
            n -= len(out)
            yield out

    async def skip(self, n: int) -> None:
        """Read and hash ``n`` bytes without sending them (a resumed upload holds them already)."""
        async for _ in self.stream(n):
            pass

    async def hexdigest(self) -> str:
        """The SHA-256 of the whole blob (every byte taken, and nothing left over at the source)."""
        await self.stop_read_ahead()
        if self._left or self._ahead or await self._next():
            raise SourceFailed(f"source {self.src.host} serves more than the {self.size} bytes of blob {self.digest}")
        if self._hashing is not None:
            await self._hashing
            self._hashing = None
        return self.hasher.hexdigest()

    async def body(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start..end-1`` for a PATCH body: what was taken before is read again from the source
        (``Range``), the rest continues the stream. After the last byte, the read-ahead of the next
        chunk starts (it runs until the next body, or ``stop_read_ahead``)."""
        await self.stop_read_ahead()
        if start < self.taken:
            stop = min(end, self.taken)
            try:
                async with self.src.blob_stream(self.repo, self.digest, start, stop) as resp:
                    read_larger(resp)
                    need = stop - start
                    async for piece in resp.aiter_bytes(PIECE):
                        out = piece[:need] if len(piece) > need else piece
                        need -= len(out)
                        yield out
                        if not need:
                            break
            except (httpx.TransportError, httpx.StreamError) as exc:
                raise SourceFailed(f"source {self.src.host}: re-reading blob {self.digest}: {exc}") from None
            if need:
                raise SourceFailed(f"source {self.src.host} ended blob {self.digest} early on a range read")
            start = stop
        if start < end:
            async for piece in self.stream(end - start):
                yield piece
        self.sent_at = time.monotonic()
        self._start_read_ahead()

    def chunk(self, start: int, end: int) -> StreamedBody:
        return StreamedBody(lambda: self.body(start, end), end - start)


async def _send_chunk(
    dst: RegistryClient, dst_repo: str, session: UploadSession, source: SourceBlob, end: int, commit: str | None = None
) -> int:
    """PATCH bytes ``session.offset..end-1``; when the connection drops mid-chunk, ask the registry where
    the upload stands (``GET`` on the upload URL) and send only what it does not hold, read again from
    the source. Returns the bytes the registry accepted.

    ``commit`` (the blob's digest): this is the last chunk, sent as the body of the closing
    ``PUT ...?digest=`` (one request and one chunk end fewer). After a drop, a blob the registry
    already holds means the PUT went through and only its answer was lost."""
    start = session.offset
    for resend in range(CHUNK_RESENDS + 1):
        try:
            if commit is not None:
                await dst.finish_upload(session.location, dst_repo, commit, source.chunk(session.offset, end))
                session.offset = end
            elif session.offset < end:
                session.location = await dst.upload_chunk(
                    session.location, dst_repo, source.chunk(session.offset, end), session.offset
                )
                session.offset = end
            return end - start
        except SourceFailed:
            raise
        except RegistryError:
            if resend == CHUNK_RESENDS:
                raise
            if commit is not None and await dst.blob_size(dst_repo, commit) is not None:
                session.offset = end
                return end - start
            status = await dst.upload_status(session.location, dst_repo)
            if status is None:
                raise RegistryError(
                    f"the target discarded upload {session.location} after a dropped connection; "
                    "the blob copy starts over"
                ) from None
            held, session.location = status
            if not start <= held <= end:
                raise RegistryError(f"the target holds {held} bytes of an upload expected at {start}..{end}") from None
            session.offset = held
    raise AssertionError("unreachable")


async def _source_digest(source: SourceBlob) -> str:
    """Our own SHA-256 of the source blob, after the rest of the stream (a registry may refuse a
    closing PUT before it read the whole body)."""
    if source.taken < source.size:
        await source.skip(source.size - source.taken)
    return "sha256:" + await source.hexdigest()


def _tampered(src: RegistryClient, src_repo: str, digest: str, actual: str) -> DigestMismatch:
    return DigestMismatch(
        f"blob {src_repo}@{digest} from {src.host} has content digest {actual}; "
        "the source registry serves tampered or corrupt data"
    )


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
    hash_in_thread: bool = False,
    first_chunk: int | None = FIRST_CHUNK,
    read_ahead: int = READ_AHEAD,
    put_last: bool = True,
) -> CopyStats:
    """Stream one blob from ``src`` to ``dst``, resumable, hashing on the fly.

    Each chunk is one PATCH streamed from the source; chunks grow from ``first_chunk`` up to
    ``chunk_size`` (``chunk_end``; ``first_chunk=None``: all ``chunk_size``), and ``read_ahead``
    bytes of the next chunk are read while the target answers one (0: none). ``progress(session,
    bytes_sent)`` runs after every chunk the target accepted and must not block for long (the
    activity hands the state to a background recorder).

    ``session`` resumes an upload an earlier attempt started: the registry's ``Range`` decides the
    offset. Bytes before it are read from the source again (to rebuild the hash) but not sent again.

    ``put_last``: the last chunk is the body of the closing ``PUT ?digest=`` (the registry verifies
    the digest before it commits; ours is checked too), not a PATCH and then an empty PUT.
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
    try:
        async with SourceBlob(src, src_repo, digest, hash_in_thread=hash_in_thread, read_ahead=read_ahead) as source:
            stats.size = source.size
            if session.offset > source.size:
                raise RegistryError(
                    f"the target holds {session.offset} bytes of an upload of the {source.size}-byte blob {digest}"
                )
            await source.skip(session.offset)
            committed = False
            while session.offset < source.size:
                end = chunk_end(session.offset, source.size, chunk_size, first_chunk)
                last = put_last and end == source.size
                try:
                    sent = await _send_chunk(dst, dst_repo, session, source, end, digest if last else None)
                except DigestMismatch:
                    # The registry refused the closing PUT: what it holds does not hash to ``digest``.
                    actual = await _source_digest(source)
                    await dst.cancel_upload(session.location, dst_repo)
                    if actual != digest:
                        raise _tampered(src, src_repo, digest, actual) from None
                    raise
                waited = time.monotonic() - source.sent_at
                if last:
                    committed, stats.finish_s = True, waited
                else:
                    stats.chunk_end_s += waited
                    stats.chunk_end_max_s = max(stats.chunk_end_max_s, waited)
                stats.bytes_sent += sent
                stats.chunks += 1
                if progress is not None:
                    r = progress(session, stats.bytes_sent)
                    if r is not None:
                        await r
            actual = await _source_digest(source)
            stats.read_ahead = source.ahead_read
        if committed:
            if actual != digest:
                # Only a registry that does not verify the digest it is told gets here (the OCI
                # distribution spec says it must): the copy fails, non-retryably.
                raise _tampered(src, src_repo, digest, actual)
            return stats
        if actual != digest:
            await dst.cancel_upload(session.location, dst_repo)
            raise _tampered(src, src_repo, digest, actual)
        t0 = time.monotonic()
        await dst.finish_upload(session.location, dst_repo, digest)
        stats.finish_s = time.monotonic() - t0
    except (httpx.TransportError, httpx.StreamError) as exc:
        # A dropped connection outside a request's own handling: retryable; the next attempt resumes.
        raise RegistryError(
            f"blob {digest} interrupted at byte {session.offset} ({type(exc).__name__}: {exc}); the upload will resume"
        ) from None
    return stats
