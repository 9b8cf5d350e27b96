"""activities/ocm/loopstream.py over real sockets, on asyncio and on uvloop (the workers' loop).

A small HTTP/1.1 server written here (asyncio streams) serves large bodies, reads large uploads, cuts
a body short, never answers, or closes an idle keep-alive connection; httpx drives it through
``LoopTransport``. What is checked: bytes arrive intact both ways, a slow reader holds at most
``HIGH_WATER`` (+ one socket read) per connection, TLS verifies against the CA it is given, and every
failure is the httpx exception callers already handle.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from activities.ocm import loopstream
from activities.ocm.loopstream import HIGH_WATER, LoopBackend, LoopTransport
from activities.ocm.oci import RegistryClient
from landscape.tls import certificate, write_certificate, write_private_key

MiB = 1024 * 1024
LOOPS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


def _body(n: int) -> bytes:
    return (hashlib.sha256(b"loopstream").digest() * (n // 32 + 1))[:n]


class Server:
    """HTTP/1.1 on 127.0.0.1; keep-alive unless a path says otherwise; counts connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, tls: ssl.SSLContext | None = None) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls, limit=MiB)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, target, _ = lines[0].split(" ")
                headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:] if ":" in h)}
                digest = hashlib.sha256()
                left = int(headers.get("content-length", "0"))
                while left:
                    data = await reader.read(min(left, 256 * 1024))
                    digest.update(data)
                    left -= len(data)
                if not await self._answer(method, target, digest.hexdigest(), writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, method: str, target: str, digest: str, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False closes the connection."""
        path, _, query = target.partition("?")
        if path == "/big":
            n = int(query.removeprefix("n="))
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
            body = _body(n)
            for i in range(0, n, 256 * 1024):
                writer.write(body[i : i + 256 * 1024])
                await writer.drain()
            return True
        if path == "/upload":
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n{digest}".encode())
            await writer.drain()
            return True
        if path == "/cut":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"x" * 100_000)
            await writer.drain()
            return False
        if path == "/hang":
            await asyncio.sleep(30)
            return False
        if path == "/idle-close":  # a keep-alive answer, then the server drops the idle connection
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            await asyncio.sleep(0.05)
            return False
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        return True


def _client(verify: ssl.SSLContext | None = None, timeout: float = 10.0) -> httpx.AsyncClient:
    ctx = verify or ssl.create_default_context()
    return httpx.AsyncClient(
        transport=LoopTransport(verify=ctx, limits=httpx.Limits(max_connections=4, max_keepalive_connections=4)),
        timeout=timeout,
    )


async def _with_server(fn: Callable[[Server], Awaitable[None]], tls: ssl.SSLContext | None = None) -> None:
    server = await Server().start(tls)
    try:
        await fn(server)
    finally:
        await server.stop()


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_large_bodies_both_ways_and_a_slow_reader_buffers_little(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    peak = 0
    received = loopstream._Protocol.data_received

    def counting(self: loopstream._Protocol, data: bytes) -> None:
        nonlocal peak
        received(self, data)
        peak = max(peak, self.buffered)

    monkeypatch.setattr(loopstream._Protocol, "data_received", counting)

    async def check(server: Server) -> None:
        n = 48 * MiB
        async with _client() as c:
            digest = hashlib.sha256()
            async with c.stream("GET", f"http://127.0.0.1:{server.port}/big?n={n}") as resp:
                async for piece in resp.aiter_raw(64 * 1024):
                    digest.update(piece)
                    await asyncio.sleep(0.0005)  # a reader slower than loopback
            assert digest.digest() == hashlib.sha256(_body(n)).digest()
            up = _body(24 * MiB)
            r = await c.put(f"http://127.0.0.1:{server.port}/upload", content=up)
            assert r.text == hashlib.sha256(up).hexdigest()
        assert server.connections == 1  # the upload reused the connection of the download

    LOOPS[loop](_with_server(check))
    # The socket is paused at HIGH_WATER; one more read of the loop (<= 256 KiB) may land before it.
    assert HIGH_WATER <= peak <= HIGH_WATER + 256 * 1024


def _tls(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting the server's CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopstream test")])
    cert = certificate(
        name,
        name,
        key.public_key(),
        key,
        1,
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
        (x509.BasicConstraints(ca=True, path_length=None), True),
    )
    write_certificate(tmp / "cert.pem", cert)
    write_private_key(tmp / "key.pem", key)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return server, ssl.create_default_context(cafile=str(tmp / "cert.pem"))


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_tls_verifies_against_the_given_ca(loop: str, tmp_path: Path) -> None:
    server_ctx, client_ctx = _tls(tmp_path)

    async def check(server: Server) -> None:
        url = f"https://127.0.0.1:{server.port}"
        async with _client(client_ctx) as c:
            r = await c.get(f"{url}/big?n={3 * MiB}")
            assert r.content == _body(3 * MiB)
            up = _body(5 * MiB)
            assert (await c.put(f"{url}/upload", content=up)).text == hashlib.sha256(up).hexdigest()
        async with _client() as c:  # the system's CAs do not know this one
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await c.get(f"{url}/")

    LOOPS[loop](_with_server(check, server_ctx))


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_failures_are_the_httpx_exceptions(loop: str) -> None:
    async def check(server: Server) -> None:
        url = f"http://127.0.0.1:{server.port}"
        async with _client(timeout=0.3) as c:
            with pytest.raises(httpx.RemoteProtocolError):  # body cut short by the server
                await c.get(f"{url}/cut")
            with pytest.raises(httpx.ReadTimeout):
                await c.get(f"{url}/hang")
        await server.stop()
        await asyncio.sleep(0.05)
        async with _client() as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(f"{url}/")

    LOOPS[loop](_with_server(check))


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_an_idle_connection_the_server_closed_is_not_reused(loop: str) -> None:
    async def check(server: Server) -> None:
        url = f"http://127.0.0.1:{server.port}"
        async with _client() as c:
            assert (await c.get(f"{url}/idle-close")).text == "ok"
            await asyncio.sleep(0.3)  # the server has closed it meanwhile
            assert (await c.get(f"{url}/")).text == "ok"
            assert (await c.get(f"{url}/")).text == "ok"
        assert server.connections == 2

    LOOPS[loop](_with_server(check))


async def test_registry_clients_use_it_unless_a_proxy_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    async with RegistryClient("http://127.0.0.1:9") as c:
        transport = c._client._transport  # type: ignore[union-attr]
        assert isinstance(transport, LoopTransport)
        # httpx keeps its pool in ``_pool``: this fails loudly if a new httpx moves it.
        assert isinstance(transport._pool._network_backend, LoopBackend)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    async with RegistryClient("https://registry.example") as c:
        assert not isinstance(c._client._transport, LoopTransport)  # type: ignore[union-attr]
