"""Notifications out: a pipeline's `notify` settings reach Slack-, Teams- and webhook-shaped local
endpoints when an approval waits (with a console link), a step fails, and the run ends; the
generic webhook is signed like the webhooks we receive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from activities.notify import sign
from definitions.runs import ApprovalDecision, PipelineStatus, StepState
from landscape.process import free_port
from tests.support import pipeline
from tests.workflow.conftest import Engine

pytestmark = pytest.mark.workflow

KEY = "notify-signing-key-0123456789"


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, list[tuple[str, dict[str, Any], str]]]]:
    got: list[tuple[str, dict[str, Any], str]] = []

    async def hook(request: Request) -> JSONResponse:
        body = await request.body()
        got.append((request.path_params["kind"], json.loads(body), request.headers.get("x-apeiro-signature", "")))
        if request.path_params["kind"] == "webhook":
            t = int(request.headers["x-apeiro-signature"].split(",")[0][2:])
            assert request.headers["x-apeiro-signature"] == sign(body, KEY, t)  # verifiable by the receiver
        return JSONResponse({"ok": True})

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=[Route("/{kind}", hook, methods=["POST"])]), port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    for kind in ("slack", "teams", "webhook"):
        monkeypatch.setenv(f"NOTIFY_{kind.upper()}_URL", f"{base}/{kind}")
    monkeypatch.setenv("NOTIFY_KEY", KEY)
    try:
        yield base, got
    finally:
        server.should_exit = True
        await task


async def test_notify_on_approval_failure_and_end(engine: Engine, receiver: Any) -> None:
    _, got = receiver
    notify = {
        "consoleUrl": "https://console.example/",
        "targets": [
            {"kind": "slack", "urlRef": "env:NOTIFY_SLACK_URL", "events": ["approval"]},
            {"kind": "teams", "urlRef": "env:NOTIFY_TEAMS_URL", "events": ["finished"]},
            {"kind": "webhook", "urlRef": "env:NOTIFY_WEBHOOK_URL", "keyRef": "env:NOTIFY_KEY"},
        ],
    }
    h = await engine.start(
        pipeline(
            [
                {"name": "gate", "uses": "core.approval", "with": {"approvers": ["ops"], "message": "go?"}},
                {
                    "name": "flaky",
                    "uses": "test.probe",
                    "needs": ["gate"],
                    "continueOnError": True,
                    "with": {"key": "n-flaky", "fail_calls": 1},
                },
            ],
            name="notified",
            notify=notify,
        )
    )
    for _ in range(100):
        st = await h.query("status", result_type=PipelineStatus)
        if st.steps[0].state is StepState.WAITING and got:
            break
        await asyncio.sleep(0.1)
    await h.execute_update("approve", ApprovalDecision(step="gate", approver="ops"))
    await h.result()
    kinds = [(k, b.get("event") or b.get("title") or b.get("text", "")[:20]) for k, b, _ in got]
    slack = [b for k, b, _ in got if k == "slack"]
    assert len(slack) == 1 and f"https://console.example/run?id={h.id}" in slack[0]["text"], kinds
    hooks = [b for k, b, _ in got if k == "webhook"]
    assert [b["event"] for b in hooks] == ["approval", "failed", "finished"], kinds
    assert hooks[1]["step"] == "flaky" and "probe failure" in hooks[1]["text"]
    teams = [b for k, b, _ in got if k == "teams"]
    assert len(teams) == 1 and teams[0]["@type"] == "MessageCard" and "succeeded" in teams[0]["title"]
