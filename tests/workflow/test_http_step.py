"""`core.http` against a real HTTP server: outputs, retryable and final statuses, secret headers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tests.support import pipeline
from tests.workflow.conftest import Engine

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("time-skipping")]


class Recorder(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []
    flaky_left = 0

    def log_message(self, *args: Any) -> None:
        return None

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        Recorder.requests.append({"path": self.path, "method": self.command, "headers": dict(self.headers),
                                  "body": body})
        if self.path == "/flaky" and Recorder.flaky_left > 0:
            Recorder.flaky_left -= 1
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.end_headers()
            return
        if self.path == "/missing":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"no such thing")
            return
        payload = json.dumps({"ok": True, "path": self.path, "got": body}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


async def test_post_json_and_read_outputs(engine: Engine, server: str) -> None:
    h = await engine.start(pipeline([
        {"name": "call", "uses": "core.http",
         "with": {"url": f"{server}/hook", "method": "POST", "json": {"site": "${{ inputs.site }}"}}},
    ], inputs={"site": {"type": "string", "default": "edge-9"}},
        outputs={"status": "steps.call.outputs.status", "ok": "steps.call.outputs.json.ok"}))
    assert (await h.result())["outputs"] == {"status": 201, "ok": True}
    assert json.loads(Recorder.requests[0]["body"]) == {"site": "edge-9"}


async def test_secret_header_is_resolved_in_the_activity_only(engine: Engine, server: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APEIRO_TEST_TOKEN", "s3cr3t-token-value")
    h = await engine.start(pipeline([
        {"name": "call", "uses": "core.http",
         "with": {"url": f"{server}/auth", "secretHeaders": {"Authorization": "env:APEIRO_TEST_TOKEN"}}},
    ]))
    await h.result()
    assert Recorder.requests[0]["headers"]["Authorization"] == "s3cr3t-token-value"
    history = await h.fetch_history()
    assert "s3cr3t-token-value" not in history.to_json()


async def test_a_secret_value_instead_of_a_reference_is_rejected_before_start() -> None:
    from definitions.catalog import load_catalog
    from definitions.validate import DefinitionError, validate_definition

    with pytest.raises(DefinitionError, match="never the secret itself"):
        validate_definition(pipeline([{"name": "c", "uses": "core.http", "with": {
            "url": "http://x/", "secretHeaders": {"Authorization": "Bearer abc"}}}]), load_catalog())


async def test_503_is_retried_with_retry_after(engine: Engine, server: str) -> None:
    Recorder.flaky_left = 2
    h = await engine.start(pipeline([
        {"name": "call", "uses": "core.http", "with": {"url": f"{server}/flaky"},
         "retry": {"maxAttempts": 5, "initialInterval": "100ms"}},
    ], outputs={"status": "steps.call.outputs.status"}))
    assert (await h.result())["outputs"] == {"status": 200}
    assert [r["path"] for r in Recorder.requests] == ["/flaky"] * 3


async def test_404_is_final(engine: Engine, server: str) -> None:
    h = await engine.start(pipeline([
        {"name": "call", "uses": "core.http", "with": {"url": f"{server}/missing"}, "retry": {"maxAttempts": 5}},
    ]))
    with pytest.raises(WorkflowFailureError) as info:
        await h.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert "HTTP404: GET " in cause.message and "answered 404 (expected 200-299): no such thing" in cause.message
    assert len(Recorder.requests) == 1


async def test_unreachable_endpoint_fails_after_retries(engine: Engine) -> None:
    h = await engine.start(pipeline([
        {"name": "call", "uses": "core.http", "with": {"url": "http://127.0.0.1:9/nothing"},
         "retry": {"maxAttempts": 2, "initialInterval": "100ms"}},
    ]))
    with pytest.raises(WorkflowFailureError) as info:
        await h.result()
    assert "ConnectError: cannot connect to http://127.0.0.1:9/nothing" in str(info.value.cause)
