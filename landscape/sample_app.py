"""A sample workload Prometheus scrapes: request counters whose error ratio tests can raise.

`python -m landscape.sample_app --port P`. It counts ``requests`` per second of simulated traffic into
``sample_requests_total{code="200"|"500"}`` and exports the configured ratio as ``sample_error_ratio``.
``POST /error-rate`` with ``{"rate": 0.5}`` (0..1) changes the share of 500s; ``GET /healthz`` answers
``{"status": "ok", "errorRate": r}`` (a target for httpProbe gates).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Traffic:
    def __init__(self, rps: float) -> None:
        self.rps = rps
        self.error_rate = 0.0
        self.ok = 0.0
        self.errors = 0.0
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def tick(self) -> tuple[float, float]:
        with self.lock:
            now = time.monotonic()
            n = (now - self.last) * self.rps
            self.last = now
            self.errors += n * self.error_rate
            self.ok += n * (1 - self.error_rate)
            return self.ok, self.errors


def make_handler(traffic: Traffic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                ok, errors = traffic.tick()
                text = (
                    "# TYPE sample_requests_total counter\n"
                    f'sample_requests_total{{code="200"}} {ok:.3f}\n'
                    f'sample_requests_total{{code="500"}} {errors:.3f}\n'
                    "# TYPE sample_error_ratio gauge\n"
                    f"sample_error_ratio {traffic.error_rate}\n"
                )
                self._send(200, text.encode(), "text/plain; version=0.0.4")
            elif self.path == "/healthz":
                body = {"status": "ok" if traffic.error_rate < 0.5 else "degraded", "errorRate": traffic.error_rate}
                self._send(200, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def do_POST(self) -> None:
            if self.path != "/error-rate":
                self._send(404, b"not found\n", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                rate = float(json.loads(self.rfile.read(length))["rate"])
                if not 0 <= rate <= 1:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                self._send(400, b'{"error": "give {\\"rate\\": 0..1}"}', "application/json")
                return
            traffic.tick()
            traffic.error_rate = rate
            self._send(200, json.dumps({"errorRate": rate}).encode(), "application/json")

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m landscape.sample_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rps", type=float, default=100.0)
    args = parser.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Traffic(args.rps))).serve_forever()


if __name__ == "__main__":
    main()
