"""A lean HTTP/1.1 load client for benchmarks: keep-alive connections, no per-request pool scans.

Measured (bench.webhook, busy machine), one httpx.AsyncClient offering 200-400 deliveries/s used ~90%
of a core in the load generator and its requests waited seconds in its own connection pool before
leaving the process (httpx keeps 20 idle connections by default, so a burst past that opens and
closes a TCP connection per request; its pool also scans every waiting request on each change).
The latency the bench printed was then mostly the client's. A real sender is another machine; this
client costs a small fraction of httpx's CPU per request, so the figure is the gateway's.

Every connection carries one request at a time and is kept open for the next; a request takes an idle
connection or opens a new one (up to ``max_connections``, then waits for one). Responses must carry a
Content-Length (uvicorn's JSON answers do).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    #: seconds from the call until the request was written (waiting for and opening a connection)
    waited: float


class LeanClient:
    def __init__(self, host: str, port: int, max_connections: int = 500, timeout: float = 30.0) -> None:
        self.host, self.port = host, port
        self.timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.idle_seconds = 2.0
        self._slots = asyncio.Semaphore(max_connections)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        return await self.request("POST", path, body, headers)

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
        loop = asyncio.get_running_loop()
        t = loop.time()
        async with self._slots:
            conn = None
            while self._idle and conn is None:
                reader, writer, since = self._idle.pop()
                if loop.time() - since < self.idle_seconds and not reader.at_eof():
                    conn = (reader, writer)
                else:  # the server may close an idle connection (uvicorn: after 5 s): do not reuse it
                    writer.close()
            if conn is None:
                conn = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
            reader, writer = conn
            head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-length: {len(body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
            writer.write(head.encode() + b"\r\n" + body)
            waited = loop.time() - t
            try:
                answer = await asyncio.wait_for(self._read(reader), self.timeout)
            except BaseException:
                writer.close()
                raise
            answer.waited = waited
            if answer.headers.get("connection", "").lower() == "close":
                writer.close()
            else:
                self._idle.append((reader, writer, loop.time()))
            return answer

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> Answer:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return Answer(status, headers, body, 0.0)

    async def aclose(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()
