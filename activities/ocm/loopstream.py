"""An httpcore network backend on the running event loop's own transports, with bounded read buffers.

Why not httpcore's default (anyio): on uvloop (the workers' loop) anyio's socket stream lets libuv read
a socket up to 32 times per wakeup before it pauses reading after each ``receive``, so a fast source
stream queues several MiB per connection (worker RSS grew by ~10 MiB per parallel blob copy), and it
stops and restarts reading around every ``receive`` (two ``epoll_ctl`` per read). Its TLS runs in
Python over memory BIOs. Here a small ``asyncio.Protocol`` buffers at most ``HIGH_WATER`` bytes per
connection (the loop's flow control pauses the socket above it and resumes it below ``LOW_WATER``),
and TLS is the loop's own ``start_tls`` (Cython in uvloop, the standard library's in asyncio).

It implements httpcore's ``AsyncNetworkBackend`` interface and nothing more; httpx and httpcore still
do HTTP (h11), pooling and timeouts' meaning. Errors are httpcore's (``ConnectError``, ``ReadError``,
``ReadTimeout``, ...), so callers see the httpx exceptions they saw before.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

#: Bytes a connection holds read but not yet consumed before the loop stops reading its socket.
HIGH_WATER = 1024 * 1024
#: ... and resumes once the consumer has taken it below this.
LOW_WATER = 256 * 1024

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class _Protocol(asyncio.Protocol):
    """Received bytes in arrival order, the socket paused while ``HIGH_WATER`` or more wait; write
    flow control (``drain``) as the loop reports it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._write_paused = False

    # -- the loop's side --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close the transport (HTTP/1.1 never half-closes on purpose)

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None:
            self.error = exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)

    def _wake_writer(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # -- the consumer's side ----------------------------------------------------------------------
    async def read(self, max_bytes: int) -> bytes:
        while not self.chunks:
            if self.eof:
                if self.error is not None:
                    raise httpcore.ReadError(str(self.error) or type(self.error).__name__)
                return b""
            self._readable = asyncio.get_running_loop().create_future()
            try:
                await self._readable
            finally:
                self._readable = None
        data = self.chunks.popleft()
        if len(data) > max_bytes:
            data, rest = data[:max_bytes], data[max_bytes:]
            self.chunks.appendleft(rest)
        self.buffered -= len(data)
        if self.reading_paused and self.buffered < LOW_WATER and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    async def drain(self) -> None:
        while self._write_paused and self.error is None and not self.closing:
            self._writable = asyncio.get_running_loop().create_future()
            try:
                await self._writable
            finally:
                self._writable = None
        if self.error is not None or self.closing:
            raise httpcore.WriteError(str(self.error) if self.error else "connection closed")

    @property
    def closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()


class LoopStream(httpcore.AsyncNetworkStream):
    """One connection: plain TCP, or TLS once ``start_tls`` replaced its transport."""

    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol

    @property
    def _transport(self) -> asyncio.Transport:
        assert self._protocol.transport is not None
        return self._protocol.transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._protocol.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout(f"no data within {timeout} s") from None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._protocol.closing or self._protocol.error is not None:
            raise httpcore.WriteError("connection closed")
        try:
            async with asyncio.timeout(timeout):
                self._transport.write(buffer)
                await self._protocol.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout(f"could not send within {timeout} s") from None
        except (OSError, RuntimeError) as exc:
            raise httpcore.WriteError(str(exc)) from None

    async def aclose(self) -> None:
        # close() flushes what is buffered and, on TLS, starts the shutdown; nothing here waits for the
        # peer (httpcore closes idle connections from cancelled scopes too).
        if self._protocol.transport is not None and not self._protocol.transport.is_closing():
            self._protocol.transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        protocol = _Protocol()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            await self.aclose()
            raise httpcore.ConnectTimeout(f"TLS handshake did not finish within {timeout} s") from None
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            await self.aclose()
            raise httpcore.ConnectError(str(exc)) from None
        if transport is None:
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        protocol.connection_made(transport)
        return LoopStream(protocol)

    def get_extra_info(self, info: str) -> Any:
        transport = self._protocol.transport
        if transport is None:
            return None
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":
            # An idle keep-alive connection is "readable" when the server closed it or sent something.
            return self._protocol.eof or bool(self._protocol.chunks) or transport.is_closing()
        return None


class LoopBackend(httpcore.AsyncNetworkBackend):
    """``connect_tcp`` on the running loop with ``_Protocol``; Unix sockets the same way."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        return await _connect(
            f"{host}:{port}",
            lambda: asyncio.get_running_loop().create_connection(_Protocol, host, port, local_addr=local),
            timeout,
            socket_options,
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return await _connect(
            path, lambda: asyncio.get_running_loop().create_unix_connection(_Protocol, path), timeout, socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connect(
    where: str,
    opener: Callable[[], Awaitable[tuple[asyncio.BaseTransport, _Protocol]]],
    timeout: float | None,
    options: Iterable[SocketOption] | None,
) -> LoopStream:
    """A connection made by ``opener`` within ``timeout``, with httpcore's errors when it fails."""
    try:
        async with asyncio.timeout(timeout):
            _, protocol = await opener()
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"no connection to {where} within {timeout} s") from None
    except OSError as exc:
        raise httpcore.ConnectError(str(exc)) from None
    _apply(protocol, options)
    return LoopStream(protocol)


def _apply(protocol: _Protocol, options: Iterable[SocketOption] | None) -> None:
    sock = protocol.transport.get_extra_info("socket") if protocol.transport is not None else None
    if sock is None:
        return
    for option in options or ():
        with contextlib.suppress(OSError):
            sock.setsockopt(*option)
    with contextlib.suppress(OSError, AttributeError):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LoopTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on ``LoopBackend`` (same TLS context, limits, HTTP/1.1)."""

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx.Limits, retries: int = 0) -> None:
        super().__init__(verify=verify, limits=limits, retries=retries)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=retries,
            network_backend=LoopBackend(),
        )
