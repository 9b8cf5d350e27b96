"""Remote documents are read with caps: an endless manifest from a real (local) HTTP server fails
non-retryably naming the source while the worker's memory stays bounded; a deeply nested manifest or
descriptor is a clean error, never a RecursionError that Temporal would retry."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from activities.bounded import MAX_MANIFEST_BYTES
from activities.ocm.errors import InvalidDescriptor
from activities.ocm.normalise import load_descriptor_data
from activities.ocm.oci import RegistryClient, RemoteDataRejected


class _Endless(BaseHTTPRequestHandler):
    """Serves an endless (chunked) manifest, or one nested 100,000 deep."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        if "deep" in self.path:
            body = b'{"layers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b'{"a": "' + b"x" * 65_000 + b'", '
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        started = time.monotonic()
        try:
            while time.monotonic() - started < 60:  # endless for the client; bounded for the test
                self.wfile.write(frame)
        except (OSError, BrokenPipeError, ConnectionResetError):
            return

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_endless_manifest_fails_non_retryably_with_bounded_memory(registry: str) -> None:
    before = _rss_mib()
    async with RegistryClient(registry) as client:
        started = time.monotonic()
        with pytest.raises(RemoteDataRejected) as caught:
            await client.get_manifest("ocm/component-descriptors/example.org/app", "1.0.0")
        elapsed = time.monotonic() - started
    assert caught.value.retryable is False
    message = str(caught.value)
    assert "manifest 127.0.0.1:" in message and "example.org/app:1.0.0" in message
    assert str(MAX_MANIFEST_BYTES) in message
    assert elapsed < 20
    grown = _rss_mib() - before
    assert grown < 64, f"RSS grew {grown:.0f} MiB reading a capped manifest"


async def test_deeply_nested_manifest_is_rejected_not_recursed(registry: str) -> None:
    async with RegistryClient(registry) as client:
        with pytest.raises(RemoteDataRejected, match="nested deeper than 64"):
            await client.get_manifest("deep/repo", "1.0.0")


def test_deeply_nested_descriptor_is_invalid_not_recursion() -> None:
    text = "component: " + "{a: " * 5000 + "1" + "}" * 5000
    with pytest.raises(InvalidDescriptor, match="nested deeper"):
        load_descriptor_data(text)
    text = '{"component": ' + '{"a": ' * 100 + "1" + "}" * 101
    with pytest.raises(InvalidDescriptor, match="nested deeper than 64"):
        load_descriptor_data(text)


async def test_token_service_answer_is_capped() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/token":
            return httpx.Response(200, content=b'{"token": "' + b"t" * 200_000 + b'"}')
        if "authorization" not in req.headers:
            return httpx.Response(401, headers={"www-authenticate": 'Bearer realm="http://reg.test/token"'})
        return httpx.Response(200, content=b"{}")

    async with RegistryClient("http://reg.test", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(RemoteDataRejected, match="token service"):
            await client.get_manifest("a/b", "1")
