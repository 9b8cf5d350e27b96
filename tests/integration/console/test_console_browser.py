"""The console in a real browser (headless Chromium via selenium) against the Temporal dev server.

A running pipeline is loaded once; the page shows a step change state without a reload, the
operator clicks approve (identified by a console token), and the run proceeds to success. A
screenshot is written as a test artifact (tests/artifacts/console.png, gitignored, and the tmp dir).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from temporalio.client import Client

from definitions.runs import PipelineResult
from landscape.process import free_port
from tests.support import pausing_flaky, pipeline
from tests.workflow.conftest import Engine
from triggers.console.app import create_console
from triggers.console.auth import ConsoleAuth
from triggers.temporal import TemporalConnection

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dev-server")]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TOKEN = "alice-console-token-0123456789"

needs_browser = pytest.mark.skipif(
    not (shutil.which("chromedriver") and (shutil.which("chromium") or shutil.which("chromium-browser"))),
    reason="Debian chromium and chromium-driver are not installed (debian-packages.txt; make install)",
)


@pytest.fixture
async def console_url(dev_client: Client) -> AsyncIterator[str]:
    """The console served by uvicorn in this event loop (it shares the test's Temporal client)."""
    port = free_port()
    app = create_console(temporal=TemporalConnection(client=dev_client), auth=ConsoleAuth(tokens={TOKEN: "alice"}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    async with httpx.AsyncClient() as http:
        for _ in range(100):
            try:
                if (await http.get(f"http://127.0.0.1:{port}/api/config")).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await task


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


async def _until(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


@needs_browser
async def test_console_shows_progress_and_approves_in_a_browser(
    dev_engine: Engine, console_url: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    handle = await dev_engine.start(
        pipeline(
            [
                # Long enough for a browser to start on a busy machine and see it before it ends.
                {"name": "prep", "uses": "core.wait", "with": {"duration": "12s"}},
                {
                    "name": "gate",
                    "uses": "core.approval",
                    "needs": ["prep"],
                    "with": {"approvers": ["alice", "bob"], "quorum": 1, "message": "ship it?"},
                },
                {
                    "name": "hosts",
                    "uses": "core.echo",
                    "needs": ["prep"],
                    "forEach": ["rack1-a", "rack1-b", "rack2-a"],
                    "with": {"values": {"host": "${{ item }}"}},
                },
                {"name": "done", "uses": "core.echo", "needs": ["gate", "hosts"], "with": {"values": {"ok": True}}},
            ],
            name="console-demo",
        )
    )
    driver = await asyncio.to_thread(_driver)
    try:
        await asyncio.to_thread(driver.get, f"{console_url}run?id={handle.id}")

        def state(step: str) -> str | None:
            rows = driver.find_elements(By.ID, f"row-{step}")
            return rows[0].get_attribute("data-state") if rows else None

        await _until(lambda: state("prep") == "waiting", what=f"prep waiting (page shows {state('prep')})")
        loaded_at = driver.execute_script("return window.apeiroLoadedAt")
        # Every step is drawn, including those not started, in the Graphviz SVG.
        await _until(lambda: driver.find_elements(By.CSS_SELECTOR, "#graph g#step-done"), what="graph drawn")
        await _until(lambda: state("gate") == "waiting", timeout=40, what="gate waiting (prep finished)")
        assert state("prep") == "succeeded"
        assert driver.execute_script("return window.apeiroLoadedAt") == loaded_at, "the page was reloaded"
        await _until(
            lambda: "state-waiting" in (driver.find_element(By.ID, "step-gate").get_attribute("class") or ""),
            what="graph shows gate waiting",
        )
        assert "ship it?" in driver.find_element(By.ID, "row-gate").text
        assert "alice" in driver.find_element(By.ID, "row-gate").text  # who may approve

        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "console-waiting.png"))  # docs/operations.md uses it
        driver.find_element(By.ID, "act-approve-gate").click()
        driver.find_element(By.ID, "act-token").send_keys(TOKEN)
        driver.find_element(By.ID, "act-reason").send_keys("looks good")
        driver.find_element(By.ID, "act-ok").click()

        await _until(lambda: state("done") == "succeeded", what="the run proceeds after approve")
        await _until(
            lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-run-state") == "succeeded",
            what="run succeeded",
        )
        await _until(
            lambda: "state-succeeded" in (driver.find_element(By.ID, "step-done").get_attribute("class") or ""),
            what="graph shows done",
        )
        assert driver.execute_script("return window.apeiroLoadedAt") == loaded_at
        for target in (tmp_path / "console.png", ARTIFACTS / "console.png"):
            assert driver.save_screenshot(str(target)), f"no screenshot at {target}"
    finally:
        await asyncio.to_thread(driver.quit)
    result = PipelineResult.model_validate(await handle.result())
    gate = next(s for s in result.steps if s.name == "gate")
    assert [v.approver for v in gate.votes] == ["alice"] and gate.votes[0].comment == "looks good"


async def test_console_api_refuses_anonymous_actions_and_404s(dev_client: Client, console_url: str) -> None:
    async with httpx.AsyncClient(base_url=console_url) as http:
        r = await http.post("api/action", params={"id": "nope", "action": "cancel"}, json={"reason": "x"})
        assert r.status_code == 401 and "who is acting" in r.json()["error"]
        r = await http.get("run", params={"id": "no-such-run-123"})
        assert r.status_code == 404 and "no run" in r.text
        r = await http.get("api/run", params={"id": "no-such-run-123"})
        assert r.status_code == 404
        r = await http.post(
            "api/action",
            params={"id": "no-such-run-123", "action": "cancel"},
            json={"reason": "x"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 404
        r = await http.get("api/runs", params={"state": "sleeping"})
        assert r.status_code == 400


async def test_console_api_repairs_a_run_and_refuses_what_may_not_happen(dev_engine: Engine, console_url: str) -> None:
    """pause/resume/retry/skip/cancel through the console's API, as the buttons send them."""
    h = await dev_engine.start(
        pipeline(
            [pausing_flaky("con-flaky"), {"name": "after", "uses": "core.echo", "needs": ["flaky"]}],
            name="console-repair",
        )
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=console_url, headers=auth) as http:

        async def act(action: str, **body: Any) -> httpx.Response:
            return await http.post("api/action", params={"id": h.id, "action": action}, json=body)

        for _ in range(100):
            view = (await http.get("api/run", params={"id": h.id})).json()
            if view["status"] and view["status"]["steps"][0]["state"] == "failed":
                break
            await asyncio.sleep(0.1)
        r = await act("retry", step="after", reason="x")
        assert r.status_code == 409 and "not failed" in r.json()["error"]
        r = await act("retry", step="flaky")
        assert r.status_code == 409 and "reason" in r.json()["error"]
        assert (await act("pause", reason="change freeze")).status_code == 200
        assert (await act("retry", step="flaky", reason="fixed")).status_code == 200
        await asyncio.sleep(1.0)
        view = (await http.get("api/run", params={"id": h.id})).json()
        assert view["status"]["paused"] and view["status"]["steps"][1]["state"] == "pending"
        assert view["status"]["steps"][0]["repairs"][0]["by"] == "alice"
        assert (await act("resume")).status_code == 200
        await h.result()
        r = await act("cancel", reason="too late")
        assert r.status_code == 409 and "ended" in r.json()["error"]
