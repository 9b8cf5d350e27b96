"""The streamed blob copy against an in-memory registry that drops connections mid-chunk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re

import httpx
import pytest

from activities.ocm.blobcopy import SourceFailed, copy_blob
from activities.ocm.errors import DigestMismatch
from activities.ocm.oci import RegistryClient, UploadSession

KiB = 1024


class MemoryRegistry:
    """Blobs and chunked uploads in memory; a PATCH can be made to fail after the body arrived
    (the registry never stores it, as behind a proxy that buffers request bodies)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.uploads: dict[str, bytearray] = {}
        self.drop_patches: set[int] = set()  # indexes of PATCH requests whose connection drops
        self.drop_puts: dict[int, bool] = {}  # index of a PUT whose answer is lost -> after committing?
        self.puts: list[int] = []  # body size of each closing PUT
        self.patches = 0
        self.patched_bytes = 0
        self.posts = 0
        self.commits: list[str] = []
        self.ranges: list[str] = []  # Range headers of blob GETs

    def handler(self, req: httpx.Request) -> httpx.Response:
        path, m = req.url.path, req.method
        if m in ("HEAD", "GET") and (b := re.match(r"/v2/.+/blobs/(sha256:\w+)$", path)):
            data = self.blobs.get(b.group(1))
            if data is None:
                return httpx.Response(404)
            if m == "HEAD":
                return httpx.Response(200, headers={"content-length": str(len(data))})
            if rng := req.headers.get("range"):
                self.ranges.append(rng)
                first, _, last = rng.removeprefix("bytes=").partition("-")
                part = data[int(first) : int(last) + 1 if last else len(data)]
                return httpx.Response(206, content=part)
            return httpx.Response(200, content=data)
        if m == "POST":
            self.posts += 1
            uid = f"u{self.posts}"
            self.uploads[uid] = bytearray()
            return httpx.Response(202, headers={"Location": f"/v2/t/blobs/uploads/{uid}"})
        uid = path.rsplit("/", 1)[-1]
        if uid not in self.uploads:
            return httpx.Response(404)
        held = self.uploads[uid]
        if m == "GET":
            rng = f"0-{len(held) - 1}" if held else "0-0"
            return httpx.Response(204, headers={"Location": f"/v2/t/blobs/uploads/{uid}", "Range": rng})
        if m == "PATCH":
            self.patches += 1
            if self.patches in self.drop_patches:
                raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
            start = int(req.headers["content-range"].split("-")[0])
            assert start == len(held), f"PATCH at {start}, registry holds {len(held)}"
            held.extend(req.content)
            self.patched_bytes += len(req.content)
            return httpx.Response(
                202, headers={"Location": f"/v2/t/blobs/uploads/{uid}", "Range": f"0-{len(held) - 1}"}
            )
        if m == "PUT":
            self.puts.append(len(req.content))
            commit = self.drop_puts.get(len(self.puts))
            if commit is False:  # dropped with the body: the registry keeps nothing of it
                raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
            held.extend(req.content)
            digest = req.url.params["digest"]
            if "sha256:" + hashlib.sha256(held).hexdigest() != digest:
                return httpx.Response(400, content=b"DIGEST_INVALID")
            self.blobs[digest] = bytes(held)
            self.commits.append(digest)
            del self.uploads[uid]
            if commit:  # committed, but the answer never arrived
                raise httpx.ReadError("connection reset by peer")
            return httpx.Response(201)
        return httpx.Response(500)


SOURCE = MemoryRegistry()  # only serves blobs; each test puts its own there


def _clients(reg: MemoryRegistry) -> tuple[RegistryClient, RegistryClient]:
    """(source, target): the source serves ``SOURCE``'s blobs, the target is ``reg``."""

    async def no_sleep(_s: float) -> None:
        return None

    src = RegistryClient("http://src.test:5000", transport=httpx.MockTransport(SOURCE.handler), sleep=no_sleep)
    dst = RegistryClient("http://dst.test:5000", transport=httpx.MockTransport(reg.handler), sleep=no_sleep)
    return src, dst


def _blob(_reg: MemoryRegistry, size: int) -> tuple[str, bytes]:
    data = os.urandom(size)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    SOURCE.blobs[digest] = data
    return digest, data


async def test_connection_dropped_mid_chunk_resends_only_that_chunk() -> None:
    reg = MemoryRegistry()
    digest, data = _blob(reg, 1000 * KiB)
    reg.drop_patches = {3, 7}
    SOURCE.ranges.clear()
    src, dst = _clients(reg)
    async with src, dst:
        stats = await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB)
    assert reg.blobs[digest] == data
    assert reg.commits == [digest], "committed exactly once"
    assert reg.posts == 1, "one upload: a dropped connection never starts the blob over"
    # 16 chunks (the last 40 KiB, the closing PUT's body); each dropped PATCH is sent once more,
    # never the blob again.
    assert reg.patches == 15 + 2 and reg.puts == [40 * KiB]
    assert reg.patched_bytes + 40 * KiB == len(data)
    assert stats.bytes_sent == len(data)
    # The re-sent chunks were read again from the source, only their own range.
    assert SOURCE.ranges == [f"bytes={2 * 64 * KiB}-{3 * 64 * KiB - 1}", f"bytes={5 * 64 * KiB}-{6 * 64 * KiB - 1}"]


async def test_resume_takes_the_registry_offset_not_the_recorded_one() -> None:
    """The heartbeat says 64 KiB, the registry holds 192 KiB (chunks sent after the last record):
    the copy continues at 192 KiB."""
    reg = MemoryRegistry()
    digest, data = _blob(reg, 512 * KiB)
    reg.uploads["u9"] = bytearray(data[: 192 * KiB])
    src, dst = _clients(reg)
    async with src, dst:
        stats = await copy_blob(
            src, "s", dst, "t", digest, chunk_size=64 * KiB, session=UploadSession("/v2/t/blobs/uploads/u9", 64 * KiB)
        )
    assert stats.resumed_from == 192 * KiB
    assert stats.bytes_sent == len(data) - 192 * KiB
    assert reg.blobs[digest] == data and reg.posts == 0


async def test_parallel_copies_stream_without_buffering_chunks() -> None:
    reg = MemoryRegistry()
    blobs = [_blob(reg, 700 * KiB) for _ in range(6)]
    src, dst = _clients(reg)
    async with src, dst:
        await asyncio.gather(
            *[copy_blob(src, "s", dst, f"t{i}", d, chunk_size=64 * KiB) for i, (d, _) in enumerate(blobs)]
        )
    assert all(reg.blobs[d] == data for d, data in blobs)
    assert reg.patches == 6 * 10 and reg.puts == [700 * KiB - 10 * 64 * KiB] * 6


async def test_progress_after_every_accepted_chunk_never_goes_back() -> None:
    reg = MemoryRegistry()
    digest, _ = _blob(reg, 300 * KiB)
    seen: list[int] = []

    def progress(s: UploadSession, _sent: int) -> None:
        seen.append(s.offset)

    src, dst = _clients(reg)
    async with src, dst:
        await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB, progress=progress)
    assert seen[0] == 0, "the upload URL is recorded before the first byte"
    assert seen == sorted(seen) and seen[-1] == 300 * KiB


async def test_corrupt_source_is_never_committed() -> None:
    reg = MemoryRegistry()
    digest, data = _blob(reg, 300 * KiB)
    SOURCE.blobs[digest] = data[:-1] + b"x"  # tampered at the source
    src, dst = _clients(reg)
    async with src, dst:
        with pytest.raises(DigestMismatch):
            await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB)
    assert not reg.commits


async def test_source_shorter_than_announced_fails_retryably() -> None:
    reg = MemoryRegistry()
    digest, data = _blob(reg, 300 * KiB)
    src, dst = _clients(reg)

    async def short_answer(req: httpx.Request) -> httpx.Response:
        async def body():  # type: ignore[no-untyped-def]
            yield data[: 100 * KiB]

        return httpx.Response(200, headers={"content-length": str(len(data))}, content=body())

    src.transport = httpx.MockTransport(short_answer)
    async with src, dst:
        with pytest.raises(SourceFailed) as err:
            await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB)
    assert err.value.retryable
    assert not reg.commits


async def test_first_chunk_dropped_resends_from_byte_zero() -> None:
    """distribution answers an empty upload's status with "Range: 0-0": that is 0 bytes, not 1."""
    reg = MemoryRegistry()
    digest, data = _blob(reg, 200 * KiB)
    reg.drop_patches = {1}
    src, dst = _clients(reg)
    async with src, dst:
        await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB)
    assert reg.blobs[digest] == data and reg.commits == [digest]


async def test_source_answer_without_length_takes_the_size_from_head() -> None:
    """A proxy that streams the blob chunked (no Content-Length): the HEAD answer gives the size."""
    reg = MemoryRegistry()
    digest, data = _blob(reg, 300 * KiB)
    src, dst = _clients(reg)

    def chunked(req: httpx.Request) -> httpx.Response:
        if req.method == "HEAD":
            return SOURCE.handler(req)

        async def body():  # type: ignore[no-untyped-def]
            yield data

        return httpx.Response(200, content=body())

    src.transport = httpx.MockTransport(chunked)
    async with src, dst:
        stats = await copy_blob(src, "s", dst, "t", digest, chunk_size=64 * KiB)
    assert reg.blobs[digest] == data and stats.size == len(data)


async def test_source_stream_reads_its_socket_in_large_reads() -> None:
    """The source's HTTP/1.1 connection reads 1 MiB at a time instead of httpcore's 64 KiB (fewer trips
    through the HTTP stack per GiB); a transport without such a connection is left as it is."""
    import http.server
    import threading

    from activities.ocm.blobcopy import SOURCE_READ, read_larger

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        async with httpx.AsyncClient() as c, c.stream("GET", f"http://127.0.0.1:{srv.server_port}/") as r:
            read_larger(r)
            conn = r.stream._stream._httpcore_stream._stream._connection  # type: ignore[attr-defined]
            assert conn.READ_NUM_BYTES == SOURCE_READ
            assert await r.aread() == b"hello"
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200))) as c:
            async with c.stream("GET", "http://x/") as r:
                read_larger(r)  # nothing to set, no error
    finally:
        srv.shutdown()
        srv.server_close()
