"""Several BMCs per `redfish.discover_bmcs` activity (issue 15, patch i15-discovery-bmc-groups)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from definitions.server import DiscoverInput, DiscoverResult, SiteDefinition
from landscape.landscape import Landscape
from landscape.process import free_port
from landscape.redfish import RedfishEmulator
from tests.server_fixtures import PASSWORD_ENV, WRONG_ENV, redfish_worker
from workflows.server import ServerDiscoveryWorkflow, proportional, spread

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("redfish-site")]


def test_groups_are_even_and_fill_the_slots() -> None:
    assert [len(g) for g in spread(list(range(50)), 8, 1)] == [8, 7, 7, 7, 7, 7, 7]
    assert [len(g) for g in spread(list(range(50)), 8, 2)] == [7, 7, 6, 6, 6, 6, 6, 6]  # 8 groups: 4 per slot
    assert [len(g) for g in spread(list(range(3)), 8, 4)] == [1, 1, 1]
    assert spread([], 8, 1) == []
    assert [x for g in spread(list(range(13)), 4, 3) for x in g] == list(range(13))


def test_lanes_get_bmcs_in_proportion_to_their_reads() -> None:
    assert proportional(300, [2, 2, 1, 1, 1, 1]) == [76, 76, 37, 37, 37, 37]  # each lane ~37 BMCs per read
    assert proportional(100, [4, 4]) == [50, 50]
    assert proportional(7, [1, 1, 1]) == [3, 2, 2]


async def test_a_group_reads_its_bmcs_and_hands_back_only_what_a_retry_may_fix(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu = redfish_site.part("redfish")
    assert isinstance(emu, RedfishEmulator)
    dead = f"http://127.0.0.1:{free_port()}"
    wrong = emu.url.replace("127.0.0.1", "localhost")  # the same BMC, another address, a wrong password
    site = SiteDefinition.model_validate(
        {
            "name": "lab-groups",
            "credentials": {
                "lab": {"username": "admin", "password_ref": f"env:{PASSWORD_ENV}"},
                "bad": {"username": "admin", "password_ref": f"env:{WRONG_ENV}"},
            },
            "default_credentials": "lab",
            "bmcs": [
                {"url": emu.url, "name": "good"},
                {"url": dead, "name": "dead"},
                {"url": wrong, "name": "wrong", "credentials": "bad"},
            ],
            "timeout_s": 10,
        }
    )
    wid = f"discover-groups-{uuid.uuid4().hex[:8]}"
    inp = DiscoverInput(site=site, concurrency=1, systems_inline=8, bmcs_per_activity=8)
    async with redfish_worker(ts_env.client, task_queue, tmp_path):
        res: DiscoverResult = await ts_env.client.execute_workflow(
            ServerDiscoveryWorkflow.run, inp, id=wid, task_queue=task_queue
        )
    assert {s.identity for s in res.servers} == {str(s["uuid"]) for s in emu.systems}
    assert sorted((p.name, p.error_type) for p in res.problems) == [
        ("dead", "BmcUnreachable"),
        ("wrong", "BmcAuthenticationFailed"),
    ]
    assert res.bmcs_reachable == 1
    history = await ts_env.client.get_workflow_handle(f"{wid}/list-0").fetch_history()
    scheduled = [
        (e.activity_task_scheduled_event_attributes.activity_type.name, e.activity_task_scheduled_event_attributes)
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    # One activity for the three BMCs; only the unreachable one is read again alone (with its retries):
    # the wrong password is not tried a second time (BMCs lock accounts after failed logins).
    assert [name for name, _ in scheduled] == ["redfish.discover_bmcs", "redfish.discover_bmc"]
    assert b"dead" in scheduled[1][1].input.payloads[0].data
    assert b"wrong" not in scheduled[1][1].input.payloads[0].data
