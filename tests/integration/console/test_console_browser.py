"""The console in a real browser (headless Chromium via selenium) against the Temporal dev server.

A running pipeline is loaded once; the page shows a step change state without a reload, the
operator clicks approve (identified by a console token), and the run proceeds to success. A
screenshot is written as a test artifact (tests/artifacts/console.png, gitignored, and the tmp dir).
"""

from __future__ import annotations

import asyncio
import contextlib
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
from landscape.landscape import Landscape
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


def _attribute(driver: Any, element_id: str, name: str) -> str | None:
    """An attribute of the element with that id, or None (absent, or replaced by the page meanwhile)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        found = driver.find_elements(By.ID, element_id)
        return found[0].get_attribute(name) if found else None
    except StaleElementReferenceException:
        return None


def _text(driver: Any, element_id: str) -> str | None:
    return _attribute(driver, element_id, "innerText")


def _click(driver: Any, element_id: str) -> bool:
    """Click the element with that id; False when the page replaced it meanwhile (try again)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        driver.find_element(By.ID, element_id).click()
    except (StaleElementReferenceException, NoSuchElementException):
        return False
    return True


async def _until(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    """Poll `check` until it is truthy. The page redraws what changed, so an element found a moment
    ago may be gone (stale): that counts as "not yet"."""
    from selenium.common.exceptions import StaleElementReferenceException

    def safe() -> Any:
        try:
            return check()
        except StaleElementReferenceException:
            return None

    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(safe)
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
            return _attribute(driver, f"row-{step}", "data-state")

        await _until(lambda: state("prep") == "waiting", what=f"prep waiting (page shows {state('prep')})")
        loaded_at = driver.execute_script("return window.apeiroLoadedAt")
        assert driver.execute_script("return !!window.apeiroStream"), "the page follows the run's event stream"
        # Every step is drawn, including those not started, in the Graphviz SVG.
        await _until(lambda: driver.find_elements(By.CSS_SELECTOR, "#graph g#step-done"), what="graph drawn")
        await _until(lambda: state("gate") == "waiting", timeout=40, what="gate waiting (prep finished)")
        assert state("prep") == "succeeded"
        assert driver.execute_script("return window.apeiroLoadedAt") == loaded_at, "the page was reloaded"
        await _until(
            lambda: "state-waiting" in (driver.find_element(By.ID, "step-gate").get_attribute("class") or ""),
            what="graph shows gate waiting",
        )
        assert "ship it?" in (_text(driver, "row-gate") or "")
        assert "alice" in (_text(driver, "row-gate") or "")  # who may approve

        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "console-waiting.png"))  # docs/operations.md uses it
        await _until(lambda: _click(driver, "act-approve-gate"), what="approve clicked")
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

        # A finished run offers a re-run from a chosen step (a new run; the page moves to it).
        from selenium.webdriver.support.ui import Select

        assert not driver.find_element(By.ID, "finished-actions").get_attribute("hidden")
        assert not driver.find_element(By.ID, "running-actions").is_displayed()
        Select(driver.find_element(By.ID, "rerun-step")).select_by_value("done")
        driver.find_element(By.ID, "act-rerun").click()
        driver.find_element(By.ID, "act-reason").send_keys("new certificate")
        driver.find_element(By.ID, "act-ok").click()
        await _until(lambda: f"{handle.id}-rerun-" in driver.current_url, what="the page shows the new run")
        await _until(lambda: state("done") == "succeeded", what="the re-run ran done again")
        origin = f"re-run of {handle.id} from step done by alice: new certificate"
        await _until(lambda: _text(driver, "origin") == origin, what=f"origin shown (page: {_text(driver, 'origin')})")
        assert "reused from run" in (_text(driver, "row-gate") or "")  # the approval was not asked again
    finally:
        await asyncio.to_thread(driver.quit)
    result = PipelineResult.model_validate(await handle.result())
    gate = next(s for s in result.steps if s.name == "gate")
    assert [v.approver for v in gate.votes] == ["alice"] and gate.votes[0].comment == "looks good"


@pytest.fixture
async def konfidence_worker(dev_client: Client) -> AsyncIterator[Any]:
    """Promotions on the dev server with the workflow tests' stand-in Stages (no garden API needed)."""
    from temporalio.worker import Worker

    from definitions import queues
    from tests.workflow.promotion.conftest import World
    from workers.worker import workflow_runner
    from workflows.promotion import WORKFLOWS

    world = World()
    async with Worker(dev_client, task_queue=queues.KONFIDENCE, workflows=WORKFLOWS, activities=world.activities(),
                      workflow_runner=workflow_runner()):
        yield world


@needs_browser
async def test_console_shows_a_promotions_rings_and_gates_live_and_approves_a_gate(
    dev_engine: Engine, console_url: str, konfidence_worker: Any, tmp_path: Path
) -> None:
    """A pipeline with a promotion step: the page shows rings, gates and why a gate is pending, the
    panel changes without a reload (soak passes, the approval gate starts waiting), approve is clicked
    on the gate, and the promotion and the run end."""
    import uuid

    from selenium.webdriver.common.by import By

    name = f"console-app-{uuid.uuid4().hex[:6]}"
    promotion = {
        "apiVersion": "apeiro.dev/v1alpha1", "kind": "Promotion", "metadata": {"name": name},
        "spec": {
            "artifact": {"component": "example.apeiro.dev/edge-app", "repository": "http://registry"},
            "defaults": {"errorBackoff": "10s", "errorRetries": 1},
            "rings": [
                {"name": "canary", "targets": [{"stage": "canary"}], "verifyGates": [{"type": "soak", "duration": "4s"}]},
                {"name": "production", "targets": [{"stage": "prod"}],
                 "entryGates": [{"type": "approval", "approvers": ["alice", "bob"], "quorum": 1,
                                 "message": "prod after canary"}]},
            ],
        },
    }
    handle = await dev_engine.start(
        pipeline([{"name": "promote", "uses": "promotion.run", "with": {"version": "2.0.0", "promotion": promotion}}],
                 name="console-promote")
    )
    driver = await asyncio.to_thread(_driver)
    try:
        await asyncio.to_thread(driver.get, f"{console_url}run?id={handle.id}")

        def why(gate: str) -> str:
            return _text(driver, f"gate-{gate}") or ""

        await _until(lambda: "soaking 4s" in why("canary/soak"), what=f"soak pending, why shown ({why('canary/soak')!r})")
        loaded_at = driver.execute_script("return window.apeiroLoadedAt")
        panel = _text(driver, "promotion-promote") or ""
        # Every ring; a ring not started yet says why it is pending.
        assert "canary" in panel and "soak (verify)" in panel and "waiting for the rings before it" in why("production")
        await _until(lambda: "waiting for approval" in why("production/approval"), timeout=40,
                     what=f"approval pending (page: {_text(driver, 'promotion-promote')!r})")
        assert "alice, bob" in why("production/approval") and "prod after canary" in why("production/approval")
        assert _attribute(driver, "gate-canary/soak", "data-state") == "passed"  # changed live
        assert driver.execute_script("return window.apeiroLoadedAt") == loaded_at, "the page was reloaded"
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "console-promotion.png"))
        assert driver.save_screenshot(str(tmp_path / "console-promotion.png"))

        async with httpx.AsyncClient(base_url=console_url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for body, refusal in (
                ({"step": "promote", "gate": "canary/soak", "reason": "x"}, "does not wait for an approval"),
                ({"step": "nope", "gate": "production/approval", "reason": "x"}, "not a promotion.run step"),
            ):
                r = await http.post("api/action", params={"id": handle.id, "action": "approve"}, json=body)
                assert r.status_code == 409 and refusal in r.json()["error"], r.text
        await _until(lambda: _click(driver, "act-approve-production/approval"), what="approve clicked")
        driver.find_element(By.ID, "act-token").send_keys(TOKEN)
        driver.find_element(By.ID, "act-reason").send_keys("canary looks fine")
        driver.find_element(By.ID, "act-ok").click()
        await _until(lambda: _attribute(driver, "row-promote", "data-state") == "succeeded", what="the step ends")
        # The ended promotion still shows its rings and gates (from the step's outputs).
        await _until(lambda: _attribute(driver, "gate-production/approval", "data-state") == "passed",
                     what="approval passed")
        assert "approved by alice" in why("production/approval")
        assert driver.execute_script("return window.apeiroLoadedAt") == loaded_at
    finally:
        await asyncio.to_thread(driver.quit)
        for wid in (f"promotion-{name}-2.0.0", f"promotion-coordinator-{name}"):
            with contextlib.suppress(Exception):
                await dev_engine.client.get_workflow_handle(wid).terminate("test finished")
    await handle.result()
    assert konfidence_worker.stages["default/prod"] == "2.0.0"


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


async def test_console_api_reruns_a_finished_run_from_a_chosen_step(dev_engine: Engine, console_url: str) -> None:
    """The re-run button: a new run from the chosen step reusing earlier outputs, who and why recorded."""
    h = await dev_engine.start(
        pipeline(
            [
                {"name": "a", "uses": "test.probe", "with": {"key": "con-rerun-a"}},
                {"name": "b", "uses": "test.probe", "needs": ["a"], "with": {"key": "con-rerun-b", "fail_calls": 1}},
                {"name": "c", "uses": "core.echo", "needs": ["b"], "with": {"values": {"a": "${{ steps.a.outputs.key }}"}}},
            ],
            name="console-rerun",
        )
    )
    with pytest.raises(Exception, match="failed"):
        await h.result()
    async with httpx.AsyncClient(base_url=console_url) as http:

        async def rerun(headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
            auth = {"Authorization": f"Bearer {TOKEN}"} if headers is None else headers
            return await http.post("api/action", params={"id": h.id, "action": "rerun"}, json=body, headers=auth)

        r = await rerun(headers={}, step="b", reason="x")
        assert r.status_code == 401  # never anonymous
        r = await rerun(step="nope", reason="x")
        assert r.status_code == 409 and "no step 'nope'" in r.json()["error"]
        r = await rerun(step="b")
        assert r.status_code == 409 and "reason" in r.json()["error"]
        r = await rerun(reason="x")
        assert r.status_code == 409 and "needs a step" in r.json()["error"]
        r = await rerun(step="b", reason="BMC fixed")
        assert r.status_code == 200, r.text
        new_id = r.json()["result"]["workflow_id"]
        assert r.json()["by"] == "alice" and r.json()["result"]["reused"] == ["a"]
        assert new_id.startswith(f"{h.id}-rerun-")
        await dev_engine.client.get_workflow_handle(new_id).result()
        assert dev_engine.probe.calls == {"con-rerun-a": 1, "con-rerun-b": 2}  # a reused, b ran again
        view = (await http.get("api/run", params={"id": new_id})).json()
        assert view["origin"] == {"requested_by": "alice", "rerun_of": h.id, "from_step": "b", "reason": "BMC fixed"}
        assert [s["state"] for s in view["status"]["steps"]] == ["succeeded"] * 3
        assert view["status"]["steps"][0]["message"] == f"reused from run {h.id}"
        r = await http.post(
            "api/action", params={"id": "no-such-run-123", "action": "rerun"}, json={"step": "b", "reason": "x"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 404


async def test_console_says_plainly_that_temporal_is_down_and_recovers_when_it_returns(
    dev_engine: Engine, dev_landscape: Landscape
) -> None:
    """Temporal unreachable: the API answers 503 with the reason (the page shows it in its banner) and
    the run page still loads; once Temporal answers again the same console works, without a restart."""
    from workers.config import TemporalSettings

    target = {"address": "127.0.0.1:1"}  # nothing listens there
    connection = TemporalConnection(settings=lambda: TemporalSettings(address=target["address"]))
    app = create_console(temporal=connection, auth=ConsoleAuth(tokens={TOKEN: "alice"}))
    h = await dev_engine.start(pipeline([{"name": "one", "uses": "core.echo"}], name="console-down"))
    await h.result()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as http:
        for path in ("api/runs", f"api/run?id={h.id}", f"api/graph?id={h.id}"):
            r = await http.get(path)
            assert r.status_code == 503 and "Temporal is not reachable" in r.json()["error"], (path, r.text)
        r = await http.post("api/action", params={"id": h.id, "action": "rerun"}, json={"step": "one", "reason": "x"},
                            headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 503
        assert (await http.get("run", params={"id": h.id})).status_code == 200  # the page, with its banner
        target["address"] = dev_landscape.part("temporal").endpoints["address"]  # Temporal is back
        r = await http.get("api/run", params={"id": h.id})
        assert r.status_code == 200 and r.json()["execution"] == "succeeded", r.text
        assert (await http.get("api/runs")).status_code == 200


async def _events(http: httpx.AsyncClient, run_id: str, limit: float = 30) -> list[tuple[str, Any]]:
    """(event, data) pairs of a run's stream until the console ends it."""
    import json

    out: list[tuple[str, Any]] = []
    async with asyncio.timeout(limit), http.stream(
        "GET", "api/run/stream", params={"id": run_id, "interval": 0.3}
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        event, data = "message", ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and data:
                out.append((event, json.loads(data)))
                if event == "end":
                    return out
                event, data = "message", ""
    return out


async def test_console_streams_a_run_view_as_server_sent_events(dev_engine: Engine, console_url: str) -> None:
    """The run page follows /api/run/stream: a view each time the run changes, then `end`."""
    h = await dev_engine.start(
        pipeline(
            [
                {"name": "hold", "uses": "core.wait", "with": {"duration": "2s"}},
                {"name": "after", "uses": "core.echo", "needs": ["hold"], "with": {"values": {"x": 1}}},
            ],
            name="console-stream",
        )
    )
    async with httpx.AsyncClient(base_url=console_url) as http:
        events = await _events(http, h.id)
        assert events[-1][0] == "end"
        views = [data for event, data in events if event == "message"]
        assert views[0]["execution"] == "running" and views[-1]["execution"] == "succeeded"
        assert len({json_key(v) for v in views}) == len(views), "a view is sent only when it changed"
        states = [next(s["state"] for s in v["status"]["steps"] if s["name"] == "hold") for v in views if v["status"]]
        assert states[-1] == "succeeded" and {"running", "waiting"} & set(states), states  # seen while it ran
        missing = await _events(http, "no-such-run-123")
        assert [e for e, _ in missing] == ["problem", "end"] and "no run" in missing[0][1]["error"]


def json_key(view: dict[str, Any]) -> str:
    import json

    return json.dumps(view, sort_keys=True)
