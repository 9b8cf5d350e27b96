"""Day-2 workflows against the landscape's simulated gardenlet: credential rotation in two phases,
hibernation and wake-up, hibernation schedules, and what Gardener refuses."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import BaseModel
from temporalio.client import Client, WorkflowFailureError

from definitions.cluster_day2 import (
    HibernationInput,
    HibernationResult,
    HibernationSchedule,
    RotateCredentialsInput,
    RotateCredentialsResult,
)
from landscape.kubeapi.part import KubeApiServer
from tests.integration.cluster.test_cluster_workflows import NS, create, failure, garden, shoot, uid

R = TypeVar("R")

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("cluster")]


async def execute(client: Client, queue: str, workflow: str, inp: BaseModel, result_type: type[R], prefix: str) -> R:
    result: R = await client.execute_workflow(
        workflow, inp, id=f"{prefix}-{uuid.uuid4().hex[:4]}", task_queue=queue, result_type=result_type
    )
    return result


async def rotate(client: Client, queue: str, api: KubeApiServer, name: str, **kw: Any) -> RotateCredentialsResult:
    inp = RotateCredentialsInput(name=name, project_namespace=NS, garden=garden(api), **kw)
    return await execute(client, queue, "ClusterRotateCredentialsWorkflow", inp, RotateCredentialsResult, f"rotate-{name}")


async def hibernate(client: Client, queue: str, api: KubeApiServer, name: str, **kw: Any) -> HibernationResult:
    inp = HibernationInput(name=name, project_namespace=NS, garden=garden(api), **kw)
    return await execute(client, queue, "ClusterHibernationWorkflow", inp, HibernationResult, f"hib-{name}")


def rotation(api: KubeApiServer, name: str) -> dict[str, Any]:
    return dict(shoot(api, name)["status"]["credentials"]["rotation"])


async def test_rotation_in_two_phases(dev_client: Client, gardener_queue: str, garden_api: KubeApiServer) -> None:
    name = uid("rot")
    await create(dev_client, gardener_queue, garden_api, name)
    first = await rotate(dev_client, gardener_queue, garden_api, name, phase="start")
    assert first.started and not first.completed and first.phases.all_in("Prepared")
    rot = rotation(garden_api, name)
    assert rot["certificateAuthorities"]["phase"] == "Prepared"
    assert rot["certificateAuthorities"]["lastInitiationFinishedTime"]
    assert "gardener.cloud/operation" not in (shoot(garden_api, name)["metadata"].get("annotations") or {})
    # The start again is a no-op (already Prepared): no second annotation, still Prepared.
    gen = shoot(garden_api, name)["metadata"]["generation"]
    again = await rotate(dev_client, gardener_queue, garden_api, name, phase="start")
    assert again.phases.all_in("Prepared") and shoot(garden_api, name)["metadata"]["generation"] == gen
    done = await rotate(dev_client, gardener_queue, garden_api, name, phase="complete")
    assert done.completed and done.phases.all_in("Completed")
    assert rotation(garden_api, name)["serviceAccountKey"]["lastCompletionTime"]
    # Both halves in one run.
    both = await rotate(dev_client, gardener_queue, garden_api, name)
    assert both.started and both.completed
    assert both.phases.last_initiation_time > first.phases.last_initiation_time


async def test_complete_without_start_is_refused_by_gardener(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    name = uid("rot")
    await create(dev_client, gardener_queue, garden_api, name)
    with pytest.raises(WorkflowFailureError) as info:
        await rotate(dev_client, gardener_queue, garden_api, name, phase="complete")
    err = failure(info)
    assert err.type == "ShootRejected"
    assert "certificateAuthorities.phase is not 'Prepared'" in err.message


async def test_hibernate_wake_and_no_rotation_while_hibernated(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    name = uid("hib")
    await create(dev_client, gardener_queue, garden_api, name)
    res = await hibernate(dev_client, gardener_queue, garden_api, name, enabled=True)
    assert res.hibernated and res.changed and shoot(garden_api, name)["status"]["hibernated"] is True
    with pytest.raises(WorkflowFailureError) as info:
        await rotate(dev_client, gardener_queue, garden_api, name)
    assert "not permitted when shoot is hibernated" in failure(info).message
    again = await hibernate(dev_client, gardener_queue, garden_api, name, enabled=True)
    assert again.hibernated and not again.changed
    woke = await hibernate(dev_client, gardener_queue, garden_api, name, enabled=False)
    assert not woke.hibernated and shoot(garden_api, name)["status"]["hibernated"] is False


async def _until(check: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


async def test_hibernation_schedules_applied_by_gardener(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    name = uid("sch")
    await create(dev_client, gardener_queue, garden_api, name)
    now = datetime.now(UTC)
    if now.second > 50:  # keep the whole check inside one minute
        await asyncio.sleep(61 - now.second)
        now = datetime.now(UTC)
    berlin = now.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    earlier = berlin - timedelta(minutes=5)
    # Start (hibernate) this very minute, end five minutes ago: the schedule says "hibernated now".
    sched = HibernationSchedule(
        start=f"{berlin.minute} {berlin.hour} * * *",
        end=f"{earlier.minute} {earlier.hour} * * *",
        location="Europe/Berlin",
    )
    res = await hibernate(dev_client, gardener_queue, garden_api, name, schedules=[sched])
    assert res.changed and res.schedules == [sched]
    await _until(lambda: (shoot(garden_api, name).get("status") or {}).get("hibernated") is True)
    assert shoot(garden_api, name)["spec"]["hibernation"]["enabled"] is True
    # A bad cron is refused before start (model) and by Gardener (422) alike.
    with pytest.raises(ValueError):
        HibernationSchedule(start="0 25 * *")
    async with httpx.AsyncClient() as http:
        bad = await http.patch(
            f"{garden_api.url}/apis/core.gardener.cloud/v1beta1/namespaces/{NS}/shoots/{name}",
            json={"spec": {"hibernation": {"schedules": [{"start": "0 25 * * *"}]}}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
    assert bad.status_code == 422 and "spec.hibernation.schedules[0].start" in bad.text
