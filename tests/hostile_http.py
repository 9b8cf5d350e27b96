"""A local HTTP server that answers like a hostile peer: a fixed (e.g. deeply nested) body on some
paths and an endless chunked body on all others. Shared by the bounded-read tests of every client
(registry, BMC, core.http) so each proves its caps against the same behaviour."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


@contextmanager
def hostile_server(
    body_for: Callable[[str], bytes | None],
    chunk: bytes,
    content_type: str = "application/json",
    protocol_version: str = "HTTP/1.0",
) -> Iterator[str]:
    """Serves ``body_for(path)`` when it is not None, else ``chunk`` repeated for up to 60 s (endless
    for the client, bounded for the test); yields the base URL."""

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            body = body_for(self.path)
            if body is not None:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            started = time.monotonic()
            try:
                while time.monotonic() - started < 60:
                    self.wfile.write(frame)
            except OSError:
                return

        def log_message(self, *args: object) -> None:
            pass

    _Handler.protocol_version = protocol_version
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
