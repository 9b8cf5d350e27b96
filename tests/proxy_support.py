"""Serving a test reverse proxy: one catch-all route to the proxy's handler, run by uvicorn in a
thread on the proxy's port until the ``with`` block ends. Shared by the registry fault proxies and
the chaos harness's counting proxy."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from landscape.process import port_open

HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def catch_all(handle: Callable[[Request], Awaitable[Response]]) -> Starlette:
    """An app that sends every path and method to ``handle``."""
    return Starlette(routes=[Route("/{path:path}", handle, methods=METHODS)])


@contextmanager
def serving(app: Any, port: int, log_level: str = "warning") -> Iterator[None]:
    """Runs ``app`` on 127.0.0.1:``port`` (waiting up to 10 s for it to listen), stops it on exit."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
