"""The landscape-wide freeze: fleet steps wait visibly, exemptions need an approver, the audit list,
`until` expiry, and the Alertmanager route starting a freeze (dev server + simulated garden)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import Client

from activities.freeze import ACTIVITIES as FREEZE_ACTIVITIES
from definitions import queues
from definitions.cluster import ClusterStatus
from definitions.cluster_day2 import HibernationInput, HibernationResult
from definitions.freeze import FREEZE_WORKFLOW_ID, Exemption, FreezeEnd, FreezeRequest, FreezeState
from definitions.triggers import Rule
from landscape.kubeapi.admin import KubeApiAdmin
from landscape.kubeapi.part import KubeApiServer
from tests.integration.cluster.test_cluster_workflows import NS, create, garden, shoot, uid
from tests.support import sandboxed_worker
from triggers.dispatch import Planner, execute
from triggers.events import Event
from workers.cli.freeze import RefusedError, handle, update
from workflows.freeze import FreezeWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("cluster")]


@pytest.fixture
async def freeze_worker(dev_client: Client) -> AsyncIterator[Client]:
    """The freeze workflow's worker (queue `pipeline`); any freeze left over is ended afterwards."""
    async with sandboxed_worker(dev_client, queues.PIPELINE, [FreezeWorkflow], FREEZE_ACTIVITIES):
        try:
            yield dev_client
        finally:
            state = await (await handle(dev_client)).query("state", result_type=FreezeState)
            if state.active is not None:
                await update(dev_client, "end_freeze", FreezeEnd(by="test-cleanup"))


async def _status(h: Any) -> ClusterStatus:
    status: ClusterStatus = await h.query("status", result_type=ClusterStatus)
    return status


async def _until_status(h: Any, check: Any, timeout: float = 20.0) -> ClusterStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            st = await _status(h)
            if check(st):
                return st
        except Exception:  # not started yet
            pass
        assert asyncio.get_running_loop().time() < deadline, "status not reached in time"
        await asyncio.sleep(0.2)


async def test_freeze_holds_fleet_steps_exemption_and_end(
    freeze_worker: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    client = freeze_worker
    name, other = uid("frz"), uid("frz")
    await create(client, gardener_queue, garden_api, name)
    await create(client, gardener_queue, garden_api, other)
    await update(client, "start_freeze", FreezeRequest(reason="incident 4711", by="alice", recheck_seconds=0.3))
    with pytest.raises(RefusedError, match="already frozen by alice"):
        await update(client, "start_freeze", FreezeRequest(reason="again", by="carol"))

    def start(shoot_name: str) -> Any:
        return client.start_workflow(
            "ClusterHibernationWorkflow",
            HibernationInput(name=shoot_name, project_namespace=NS, garden=garden(garden_api), enabled=True),
            id=f"hib-{shoot_name}-{uuid.uuid4().hex[:4]}",
            task_queue=gardener_queue,
            result_type=HibernationResult,
        )

    held, waiting = await start(name), await start(other)
    st = await _until_status(held, lambda s: s.phase == "frozen")
    assert "frozen by alice since" in st.message and "incident 4711" in st.message
    await asyncio.sleep(1.0)
    assert not (shoot(garden_api, name)["spec"].get("hibernation") or {}).get("enabled")  # nothing acted

    # An exemption needs a named approver and a reason (refused before it reaches the freeze).
    with pytest.raises(ValidationError):
        Exemption(subject=held.id, approver="", reason="hotfix")
    await update(client, "exempt", Exemption(subject=held.id, approver="bob", reason="hotfix for 4711"))
    res = await held.result()
    assert res.hibernated
    assert "approved by bob: hotfix for 4711" in (await _status(held)).message
    # The other one still waits; the end of the freeze releases it.
    assert (await _status(waiting)).phase == "frozen"
    await update(client, "end_freeze", FreezeEnd(by="alice", reason="incident closed"))
    assert (await waiting.result()).hibernated
    state = await (await handle(client)).query("state", result_type=FreezeState)
    actions = [(a.action, a.by) for a in state.audit][-3:]
    assert actions == [("started", "alice"), ("exempted", "bob"), ("ended", "alice")]
    with pytest.raises(RefusedError, match="not frozen"):
        await update(client, "end_freeze", FreezeEnd(by="alice"))


async def test_freeze_until_expires_by_itself(freeze_worker: Client) -> None:
    until = datetime.now(UTC) + timedelta(seconds=2)
    state = await update(freeze_worker, "start_freeze", FreezeRequest(reason="short", by="alice", until=until))
    assert state.active is not None and "until" in state.active.message()
    h = await handle(freeze_worker)
    for _ in range(50):
        state = await h.query("state", result_type=FreezeState)
        if state.active is None:
            break
        await asyncio.sleep(0.2)
    assert state.active is None and state.audit[-1].action == "expired"


async def test_alertmanager_critical_alert_starts_a_freeze(freeze_worker: Client) -> None:
    from definitions.triggers import load_gateway_config
    from triggers.config import DEFAULT_CONFIG

    config = load_gateway_config(DEFAULT_CONFIG)
    route = next(r for r in config.routes if r.source == "alertmanager")
    event = Event(
        id="fp-1",
        data={
            "status": "firing",
            "labels": {"alertname": "StorageDegraded", "severity": "critical", "apeiro_freeze": "true"},
            "annotations": {"summary": "ceph is degraded"},
        },
    )
    planner = Planner()
    rule: Rule | None = planner.match(route.rules, event)
    assert rule is not None and rule.name == "freeze-on-critical"
    outcome = await execute(freeze_worker, planner.plan(route, rule, event))
    assert outcome.workflow_id == FREEZE_WORKFLOW_ID
    h = await handle(freeze_worker)
    for _ in range(50):
        state = await h.query("state", result_type=FreezeState)
        if state.active is not None:
            break
        await asyncio.sleep(0.1)
    assert state.active is not None
    assert state.active.by == "alertmanager:StorageDegraded"
    assert state.active.reason == "StorageDegraded: ceph is degraded"
    # The same alert again is recorded, not stacked; a warning-level alert does not freeze.
    await execute(freeze_worker, planner.plan(route, rule, event))
    warning = Event(id="fp-2", data={**event.data, "labels": {**event.data["labels"], "severity": "warning"}})
    assert planner.match(route.rules, warning) is None
    state = await h.query("state", result_type=FreezeState)
    assert [a.action for a in state.audit][-2:] == ["started", "requested-again"]


async def test_freeze_mid_wave_lets_in_flight_finish_and_starts_nothing_new(
    freeze_worker: Client, gardener_queue: str, garden_api: KubeApiServer, garden_admin: KubeApiAdmin
) -> None:
    from definitions.rollout import RolloutResult, RolloutStatus
    from tests.integration.cluster.test_rollout import fleet, rollout_input, start, status_until

    client = freeze_worker
    tag, names = await fleet(client, gardener_queue, garden_api, 3)
    inp = rollout_input(garden_api, tag, "cluster.hibernate", {"enabled": True}, waves=["100%"], maxInFlight=1)
    # The first target's reconcile hangs until released: the freeze surely starts while it is in flight.
    garden_admin.post(
        "/admin/gardener/faults",
        {"fault": "stuck", "shoot": f"{NS}/{names[0]}", "operation": "Reconcile", "atProgress": 0},
    )
    h = await start(client, gardener_queue, inp)
    await status_until(h, lambda s: bool(s.waves) and s.waves[0].targets[0].state == "running", timeout=30)

    def stuck() -> bool:
        obj = shoot(garden_api, names[0])
        last = (obj.get("status") or {}).get("lastOperation") or {}
        return bool((obj["spec"].get("hibernation") or {}).get("enabled")) and last.get("state") == "Processing"

    for _ in range(150):
        if stuck():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # the gardenlet is inside its stuck task now
    await update(client, "start_freeze", FreezeRequest(reason="mid-wave", by="alice", recheck_seconds=0.3))
    garden_admin.client.delete("/admin/gardener/faults").raise_for_status()  # release the hang
    st: RolloutStatus = await status_until(h, lambda s: any(t.state == "frozen" for t in s.waves[0].targets))
    states = [t.state for t in st.waves[0].targets]
    assert states[0] == "succeeded" and "frozen" in states  # the one in flight finished; the next waits
    held = next(t for t in st.waves[0].targets if t.state == "frozen")
    assert "frozen by alice since" in held.message and "mid-wave" in held.message
    assert not (shoot(garden_api, held.name)["spec"].get("hibernation") or {}).get("enabled")
    await update(client, "end_freeze", FreezeEnd(by="alice"))
    res: RolloutResult = await h.result()
    assert res.state == "done" and res.succeeded == names
