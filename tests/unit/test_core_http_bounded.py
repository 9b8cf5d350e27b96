"""core.http reads at most maxBodyBytes of an answer (an endless one is cut, memory stays bounded) and
parses JSON strictly (deep nesting, NaN, 1e400 give no json outputs instead of a retried crash)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from activities.core import CoreActivities
from definitions.core_steps import HttpArgs

BODIES = {
    "/deep": b"[" * 100_000 + b"]" * 100_000,
    "/nan": b'{"x": NaN}',
    "/huge-number": b'{"x": 1e400}',
    "/ok": b'{"x": 1}',
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.path in BODIES:
            self.send_header("Content-Length", str(len(BODIES[self.path])))
            self.end_headers()
            self.wfile.write(BODIES[self.path])
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"x" * 65_000
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        started = time.monotonic()
        try:
            while time.monotonic() - started < 60:
                self.wfile.write(frame)
        except OSError:
            return

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


async def test_endless_answer_is_cut_at_the_limit(server: str) -> None:
    started = time.monotonic()
    result = await CoreActivities().http(HttpArgs.model_validate({"url": f"{server}/endless", "max_body_bytes": 1000}))
    assert result.truncated and len(result.body) == 1000
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("path", ["/deep", "/nan", "/huge-number"])
async def test_hostile_json_gives_no_json_outputs(server: str, path: str) -> None:
    args = HttpArgs.model_validate({"url": f"{server}{path}", "max_body_bytes": 1_000_000})
    result = await CoreActivities().http(args)
    assert result.status == 200 and result.json_body is None


async def test_good_json_still_parses(server: str) -> None:
    result = await CoreActivities().http(HttpArgs.model_validate({"url": f"{server}/ok"}))
    assert result.json_body == {"x": 1}
