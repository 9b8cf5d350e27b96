"""BMC answers are read with caps: a Redfish service answering JSON nested 100,000 deep or an endless
body fails the activity non-retryably (BmcAnswerRejected) instead of a retried RecursionError or a
worker growing without bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from temporalio.exceptions import ApplicationError

from activities.redfish.activities import RedfishActivities
from definitions.server import BmcConnection


class _Bmc(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "deep"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.mode == "deep":
            body = b"[" * 100_000 + b"]" * 100_000
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b" " * 65_000
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        started = time.monotonic()
        try:
            while time.monotonic() - started < 60:
                self.wfile.write(frame)
        except OSError:
            return

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=["deep", "endless"])
def bmc(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("H", (_Bmc,), {"mode": request.param})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_hostile_bmc_answer_is_rejected_non_retryably(bmc: str) -> None:
    started = time.monotonic()
    with pytest.raises(ApplicationError) as caught:
        RedfishActivities().list_systems(BmcConnection(url=bmc, timeout_s=20))
    assert caught.value.type == "BmcAnswerRejected", caught.value
    assert caught.value.non_retryable
    assert "127.0.0.1" in caught.value.message
    assert time.monotonic() - started < 20
