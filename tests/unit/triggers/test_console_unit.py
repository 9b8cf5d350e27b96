"""The console without Temporal: identity rules, the DAG it draws, mounting in the gateway, and a
plain 503 (never a crash) when Temporal cannot be reached."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from definitions.runs import PipelineStatus, StepState, StepStatus
from definitions.validate import parse_pipeline
from tests.support import pipeline
from tests.triggers_support import gateway_config
from triggers.app import create_app
from triggers.console.app import create_console
from triggers.console.auth import ConsoleAuth, Unauthenticated, parse_tokens
from triggers.console.render import status_dot
from triggers.temporal import TemporalConnection
from workers.config import TemporalSettings


def test_identity_from_token_or_trusted_header_never_anonymous() -> None:
    auth = ConsoleAuth(identity_header="X-Forwarded-User", tokens={"t" * 20: "robot"})
    assert auth.identify({"authorization": "Bearer " + "t" * 20}) == "robot"
    assert auth.identify({"x-forwarded-user": "alice"}) == "alice"
    with pytest.raises(Unauthenticated, match="not known"):
        auth.identify({"authorization": "Bearer wrong"})
    with pytest.raises(Unauthenticated, match="who is acting"):
        auth.identify({})
    with pytest.raises(Unauthenticated, match="read-only"):
        ConsoleAuth().identify({"x-forwarded-user": "alice"})  # no header configured: not trusted


def test_tokens_file_format() -> None:
    assert parse_tokens("# ops\nalice 0123456789abcdef0123\n") == {"0123456789abcdef0123": "alice"}
    with pytest.raises(ValueError, match="16"):
        parse_tokens("alice short\n")


def test_dag_has_every_step_coloured_by_state_and_foreach_groups() -> None:
    p = parse_pipeline(
        pipeline(
            [
                {"name": "a", "uses": "core.echo"},
                {"name": "b", "uses": "core.echo", "needs": ["a"], "forEach": ["x", "y"]},
                {"name": "c", "uses": "core.echo", "needs": ["b"]},
            ]
        )
    )
    st = PipelineStatus(
        pipeline="test",
        workflow_id="w",
        state="running",
        steps=[
            StepStatus(name="a", uses="core.echo", state=StepState.FAILED, error="boom"),
            StepStatus(name="b", uses="core.echo", state=StepState.RUNNING, items_total=2, items_done=1),
        ],
    )
    dot = status_dot(p, st)
    assert 'id="step-c", class="step state-pending"' in dot  # not started yet, still drawn
    assert "state-failed" in dot and "boom" in dot
    assert 'subgraph "cluster_b"' in dot and "forEach: 1/2" in dot


def test_gateway_mounts_the_console_and_temporal_down_is_a_plain_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APEIRO_CONSOLE", "1")
    down = TemporalConnection(settings=lambda: TemporalSettings(address="127.0.0.1:1"))
    app = create_app(gateway_config(), temporal=down)
    with TestClient(app) as http:
        page = http.get("/console/")
        assert page.status_code == 200 and "Apeiro runs" in page.text
        r = http.get("/console/api/runs")
        assert r.status_code == 503 and "not reachable" in r.json()["error"]
        assert http.get("/console/static/console.js").status_code == 200


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_console_alone_serves_its_pages() -> None:
    app = create_console(temporal=TemporalConnection(settings=lambda: TemporalSettings(address="127.0.0.1:1")))
    with TestClient(app) as http:
        assert "steps" in http.get("/run", params={"id": "x"}).text
        assert http.post("/api/action", params={"id": "x", "action": "cancel"}, json={}).status_code == 401
