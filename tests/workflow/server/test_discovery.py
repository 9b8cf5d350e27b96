"""Discovery workflow on the time-skipping server against the emulator."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from definitions.server import DiscoverInput, DiscoverResult, DiscoveryProgress
from landscape.landscape import Landscape
from landscape.process import free_port
from landscape.redfish import RedfishEmulator
from tests.server_fixtures import WRONG_ENV, redfish_worker, site
from workflows.server import ServerDiscoveryWorkflow

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("redfish-site")]


async def discover(
    env: WorkflowEnvironment, queue: str, inp: DiscoverInput, wid: str | None = None
) -> DiscoverResult:
    result: DiscoverResult = await env.client.execute_workflow(
        ServerDiscoveryWorkflow.run, inp, id=wid or f"discover-{uuid.uuid4().hex[:8]}", task_queue=queue
    )
    return result


@pytest.mark.parametrize("inline", [4, 8], ids=["chassis-in-batches", "inventory-in-the-bmc-activity"])
async def test_discovery_reads_inventory_and_reports_unreachable_bmc(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path, inline: int
) -> None:
    emu = redfish_site.part("redfish")
    assert isinstance(emu, RedfishEmulator)
    dead = f"http://127.0.0.1:{free_port()}"
    # 5 systems behind the BMC: above `systems_inline` 4 they are read in inventory batches (two systems per
    # batch), at 8 by the one activity that logs in and lists them; one BMC per list batch. The progress
    # counts several batches either way.
    inp = DiscoverInput(
        site=site("lab-a", emu.url, dead),
        concurrency=4,
        systems_inline=inline,
        bmcs_per_batch=1,
        systems_per_batch=2,
    )
    async with redfish_worker(ts_env.client, task_queue, tmp_path):
        wid = f"discover-{uuid.uuid4().hex[:8]}"
        first = await discover(ts_env, task_queue, inp, wid)
        second = await discover(ts_env, task_queue, inp)
        # The status query (`apeiro baremetal discover`'s progress), answered by replaying the history.
        progress = await ts_env.client.get_workflow_handle(wid).query("status", result_type=DiscoveryProgress)
    assert progress == DiscoveryProgress(
        state="done",
        bmcs_total=2,
        bmcs_done=2,
        systems_total=len(emu.systems),
        systems_done=len(emu.systems),
        problems=1,
        servers=len(emu.systems),
    )
    history = await ts_env.client.get_workflow_handle(f"{wid}/list-0").fetch_history()
    activities = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    assert activities == {"redfish.discover_bmc"}  # one activity per BMC: log in, list (and read)
    try:
        await ts_env.client.get_workflow_handle(f"{wid}/inventory-0").describe()
        batches = True
    except RPCError:
        batches = False
    assert batches == (len(emu.systems) > inline)
    assert len(first.servers) == len(emu.systems)
    assert {s.identity for s in first.servers} == {str(s["uuid"]) for s in emu.systems}
    assert all(s.macs for s in first.servers)
    assert "processors" in first.servers[0].unknown  # the fake driver has no Processors: unknown, no crash
    assert first.bmcs_total == 2 and first.bmcs_reachable == 1
    assert [p.bmc_url for p in first.problems] == [dead]
    assert first.problems[0].error_type == "BmcUnreachable"
    assert sorted(first.diff.added) == sorted(first.identities)
    assert second.diff.added == [] and second.diff.removed == [] and second.diff.changed == []
    stored = list((tmp_path / "lab-a" / "servers").glob("*.json"))
    assert len(stored) == len(emu.systems)


async def test_rediscovery_reports_removed_server(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu = redfish_site.part("redfish")
    from activities.redfish.store import FileInventoryStore
    from definitions.server import ServerSummary, SiteSnapshot

    store = FileInventoryStore(tmp_path)
    ghost = ServerSummary(identity="serial-GHOST1", bmc_url=emu.url, system_path="/redfish/v1/Systems/ghost")
    store.save_snapshot(SiteSnapshot(site="lab-b", servers=[ghost]))
    async with redfish_worker(ts_env.client, task_queue, tmp_path):
        res = await discover(ts_env, task_queue, DiscoverInput(site=site("lab-b", emu.url)))
    assert res.diff.removed == ["serial-GHOST1"]
    assert len(res.diff.added) == len(emu.systems)


async def test_wrong_credentials_are_reported_naming_the_bmc(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu = redfish_site.part("redfish")
    async with redfish_worker(ts_env.client, task_queue, tmp_path):
        res = await discover(
            ts_env, task_queue, DiscoverInput(site=site("lab-c", emu.url, password_env=WRONG_ENV))
        )
    assert res.servers == []
    [problem] = res.problems
    assert problem.error_type == "BmcAuthenticationFailed"
    assert emu.url in problem.message


async def test_duplicate_bmc_fails_without_retrying(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu = redfish_site.part("redfish")
    bad = site("lab-d", emu.url, emu.url + "/")
    assert any("duplicate BMC" in p for p in bad.problems())
    async with redfish_worker(ts_env.client, task_queue, tmp_path):
        with pytest.raises(WorkflowFailureError) as info:
            await discover(ts_env, task_queue, DiscoverInput(site=bad))
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "InvalidSiteDefinition" and "duplicate BMC" in cause.message


async def test_bmc_503_for_a_while_then_recovers(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu = redfish_site.part("redfish")
    assert isinstance(emu, RedfishEmulator)
    emu.inject(unavailable_requests=3)
    try:
        async with redfish_worker(ts_env.client, task_queue, tmp_path):
            res = await discover(
                ts_env, task_queue, DiscoverInput(site=site("lab-e", emu.url), concurrency=1, systems_inline=8)
            )
    finally:
        emu.inject()
    assert res.problems == []
    assert len(res.servers) == len(emu.systems)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"site": {"name": "x", "bmcs": [{"url": "https://b"}]}, "concurency": 4}, "concurency"),
        ({"site": {"name": "x", "bmcs": "https://b"}}, "site.bmcs"),
        ("edge-1", "invalid DiscoverInput"),
        ({"site": {"name": "x", "bmcs": [{"url": "https://b"}]}, "concurrency": 0}, "concurrency"),
    ],
)
async def test_json_that_does_not_fit_fails_the_workflow_not_the_task(
    ts_env: WorkflowEnvironment, task_queue: str, tmp_path: Path, raw: object, expected: str
) -> None:
    async with redfish_worker(ts_env.client, task_queue, tmp_path):
        with pytest.raises(WorkflowFailureError) as info:
            await ts_env.client.execute_workflow(
                "ServerDiscoveryWorkflow", raw, id=f"bad-{uuid.uuid4().hex[:8]}", task_queue=task_queue
            )
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "InvalidInput" and expected in cause.message
