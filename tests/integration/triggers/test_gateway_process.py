"""`apeiro webhook serve` as a process (uvicorn), and a Temporal that goes away under a connected gateway."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from landscape.landscape import Landscape
from landscape.process import free_port
from landscape.temporal import TemporalDevServer
from tests.integration.conftest import REPO, cli_env
from tests.triggers_support import ENV, MINIMAL_GATEWAY_YAML, asgi_client, gateway_app, signed, write_definitions
from triggers.temporal import TemporalConnection
from workers.config import TemporalSettings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("triggers-dev")]



def serve_argv(config: Path, port: int) -> list[str]:
    """`apeiro webhook serve` as an operator runs it."""
    return [sys.executable, "-m", "workers.cli", "webhook", "serve", "--config", str(config), "--port", str(port)]


@pytest.fixture
def served(dev_landscape: Landscape, tmp_path: Path) -> Iterator[str]:
    (tmp_path / "gw.yaml").write_text(MINIMAL_GATEWAY_YAML)
    port = free_port()
    env = cli_env(dev_landscape, APEIRO_DEFINITIONS=str(write_definitions(tmp_path)), **ENV)
    proc = subprocess.Popen(
        serve_argv(tmp_path / "gw.yaml", port), env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "gateway exited"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def test_serve_as_a_process(served: str, dev_client: Client) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=30) as http:
        resp = await http.post(
            "/hooks/pipelines/hook-echo", **signed({"inputs": {"message": "proc"}, "eventId": "proc-1"})
        )
        assert resp.status_code == 202, resp.text
        wid = resp.json()["workflows"][0]["workflow_id"]
        assert (await http.get("/readyz")).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert 'apeiro_webhook_workflow_actions_total{action="started",route="pipelines"} 1.0' in metrics
        assert (await http.get("/openapi.json")).json()["paths"]["/hooks/pipelines/{pipeline}"]
    assert (await dev_client.get_workflow_handle(wid).describe()).workflow_type == "PipelineWorkflow"
    await dev_client.get_workflow_handle(wid).terminate("test done")


def test_serve_refuses_a_config_whose_keys_do_not_resolve(dev_landscape: Landscape, tmp_path: Path) -> None:
    (tmp_path / "gw.yaml").write_text(MINIMAL_GATEWAY_YAML.replace("T_HOOK_KEY", "T_NOT_SET_ANYWHERE"))
    env = cli_env(dev_landscape)
    res = subprocess.run(
        serve_argv(tmp_path / "gw.yaml", free_port()), env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1 and "T_NOT_SET_ANYWHERE is not set" in res.stderr


async def test_temporal_going_down_gives_503_and_the_retry_after_restart_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    server = TemporalDevServer(port=port, headless=True, persistent=True)
    server.start(tmp_path / "temporal")
    settings = TemporalSettings(address=f"127.0.0.1:{port}")
    app = gateway_app(tmp_path, monkeypatch, TemporalConnection(lambda: settings))
    try:
        async with asgi_client(app) as gw:
            first = await gw.post("/hooks/pipelines/hook-echo", **signed({"inputs": {"message": "a"}, "eventId": "a"}))
            assert first.status_code == 202, first.text
            server.stop()
            req = signed({"inputs": {"message": "b"}, "eventId": "b"})
            down = await gw.post("/hooks/pipelines/hook-echo", **req)
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "5" and "nothing was started" in down.json()["error"]
            server = TemporalDevServer(port=port, headless=True, persistent=True)
            server.start(tmp_path / "temporal")
            up = await gw.post("/hooks/pipelines/hook-echo", **req)  # the sender's unchanged retry
            assert up.status_code == 202, up.text
            assert up.json()["workflows"][0]["workflow_id"] == "pipelines-hook-echo-b"
            again = await gw.post("/hooks/pipelines/hook-echo", **signed({"inputs": {"message": "a"}, "eventId": "a"}))
            assert again.json()["workflows"][0]["workflow_id"] == first.json()["workflows"][0]["workflow_id"]
    finally:
        server.stop()
