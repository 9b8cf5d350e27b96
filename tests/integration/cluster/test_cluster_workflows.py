"""Cluster workflows end to end: dev server + gardener worker + landscape API server with the
simulated gardenlet (fast clock). One test per bad input and fault the issue lists."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from definitions.cluster import (
    ClusterCreateInput,
    ClusterCreateResult,
    ClusterDeleteInput,
    ClusterDeleteResult,
    ClusterMaintainInput,
    ClusterMaintainResult,
    ClusterSpec,
    ClusterStatus,
    ClusterUpgradeInput,
    ClusterUpgradeResult,
    GardenRef,
    MaintenanceWindow,
    WorkerPool,
)
from landscape.gardener import samples
from landscape.kubeapi.admin import KubeApiAdmin
from landscape.kubeapi.part import KubeApiServer

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("cluster")]

NS = samples.PROJECT_NAMESPACE
R = TypeVar("R")


def garden(api: KubeApiServer) -> GardenRef:
    return GardenRef(kubeconfig_ref=f"file:{api.endpoints['kubeconfig']}")


def spec(name: str, version: str = "1.30.8", image: str = "1592.9.0", **kw: Any) -> ClusterSpec:
    return ClusterSpec(
        name=name,
        project_namespace=NS,
        cloud_profile=kw.pop("profile", "local"),
        region="local",
        credentials_binding=samples.BINDING,
        provider_type="local",
        kubernetes_version=version,
        workers=[WorkerPool(name="pool1", machine_type="local-small", image_version=image)],
        maintenance=kw.pop("maintenance", open_window()),
        **kw,
    )


def _window(start_h: float, end_h: float) -> MaintenanceWindow:
    now = datetime.now(UTC)
    return MaintenanceWindow(
        begin=(now + timedelta(hours=start_h)).strftime("%H%M%S+0000"),
        end=(now + timedelta(hours=end_h)).strftime("%H%M%S+0000"),
    )


def open_window() -> MaintenanceWindow:
    """Open now and for the next hours: Gardener accepts windows of 30 min to 6 h only."""
    return _window(-1, 5)


def shut_window() -> MaintenanceWindow:
    """Closed now (opens in three hours)."""
    return _window(3, 4)


def uid(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def shoot(api: KubeApiServer, name: str) -> dict[str, Any]:
    resp = httpx.get(f"{api.url}/apis/core.gardener.cloud/v1beta1/namespaces/{NS}/shoots/{name}")
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


def shoot_code(api: KubeApiServer, name: str) -> int:
    return httpx.get(f"{api.url}/apis/core.gardener.cloud/v1beta1/namespaces/{NS}/shoots/{name}").status_code


async def execute(client: Client, queue: str, workflow: str, inp: Any, result_type: type[R], run: str) -> R:
    """Runs ``workflow`` to its result under a fresh id starting with ``run``."""
    result: R = await client.execute_workflow(
        workflow, inp, id=f"{run}-{uuid.uuid4().hex[:4]}", task_queue=queue, result_type=result_type
    )
    return result


async def create(client: Client, queue: str, api: KubeApiServer, name: str, **kw: Any) -> ClusterCreateResult:
    inp = ClusterCreateInput(cluster=kw.pop("cluster", None) or spec(name), garden=garden(api), **kw)
    return await execute(client, queue, "ClusterCreateWorkflow", inp, ClusterCreateResult, f"create-{name}")


def failure(exc: pytest.ExceptionInfo[WorkflowFailureError]) -> ApplicationError:
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_create_ready_and_idempotent(dev_client: Client, gardener_queue: str, garden_api: KubeApiServer) -> None:
    name = uid()
    result = await create(dev_client, gardener_queue, garden_api, name)
    assert result.created and result.kubernetes_version == "1.30.8"
    obj = shoot(garden_api, name)
    assert obj["status"]["lastOperation"]["state"] == "Succeeded"
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    again = await create(dev_client, gardener_queue, garden_api, name)
    assert not again.created and again.ready_resource_version == obj["metadata"]["resourceVersion"]


async def test_unknown_cloud_profile_fails_without_retry(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    name = uid()
    with pytest.raises(WorkflowFailureError) as err:
        await create(dev_client, gardener_queue, garden_api, name, cluster=spec(name, profile="no-such-profile"))
    cause = failure(err)
    assert cause.type == "ShootRejected" and "could not find referenced cloud profile" in cause.message


async def test_absent_and_expired_versions_rejected_on_create(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    # Gardener answers both the same way: an expired version is not among the versions offered on create.
    for version, text in (("1.31.9", 'Unsupported value: "1.31.9"'), ("1.28.15", 'Unsupported value: "1.28.15"')):
        name = uid()
        with pytest.raises(WorkflowFailureError) as err:
            await create(dev_client, gardener_queue, garden_api, name, cluster=spec(name, version=version))
        assert failure(err).type == "ShootRejected" and text in failure(err).message


async def test_quota_exceeded_fails_fast_with_code(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer, garden_admin: KubeApiAdmin
) -> None:
    name = uid()
    garden_admin.post("/admin/gardener/faults", {"fault": "quota-exceeded", "shoot": f"{NS}/{name}"})
    with pytest.raises(WorkflowFailureError) as err:
        await create(dev_client, gardener_queue, garden_api, name)
    cause = failure(err)
    assert cause.type == "ShootFailed" and "ERR_INFRA_QUOTA_EXCEEDED" in cause.message
    assert "Quota exceeded" in cause.message
    # The operator raised the quota and runs create again: it asks Gardener to retry and waits.
    again = await create(dev_client, gardener_queue, garden_api, name)
    assert not again.created
    assert shoot(garden_api, name)["status"]["lastOperation"]["state"] == "Succeeded"


async def test_rate_limited_recovers_with_retry_annotation(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer, garden_admin: KubeApiAdmin
) -> None:
    name = uid()
    garden_admin.post("/admin/gardener/faults", {"fault": "rate-limited", "shoot": f"{NS}/{name}"})
    result = await create(dev_client, gardener_queue, garden_api, name, auto_retry_delay_seconds=0.2)
    assert result.created
    obj = shoot(garden_api, name)
    assert obj["metadata"]["generation"] == 2  # the retry annotation bumped it and was removed
    assert "gardener.cloud/operation" not in (obj["metadata"].get("annotations") or {})


async def test_error_state_keeps_waiting(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer, garden_admin: KubeApiAdmin
) -> None:
    name = uid()
    garden_admin.post("/admin/gardener/faults", {"fault": "error", "shoot": f"{NS}/{name}", "simSeconds": 1500})
    result = await create(dev_client, gardener_queue, garden_api, name)
    assert result.created and shoot(garden_api, name)["status"]["lastOperation"]["state"] == "Succeeded"


async def test_stuck_processing_times_out_naming_the_task(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer, garden_admin: KubeApiAdmin
) -> None:
    name = uid()
    garden_admin.post("/admin/gardener/faults", {"fault": "stuck", "shoot": f"{NS}/{name}", "atProgress": 60})
    with pytest.raises(WorkflowFailureError) as err:
        await create(dev_client, gardener_queue, garden_api, name, timeout_seconds=2)
    cause = failure(err)
    assert cause.type == "ShootTimeout"
    assert "Processing at 60%" in cause.message and "Waiting until shoot worker nodes" in cause.message


async def test_api_server_503_for_a_while_and_cut_watch(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer, garden_admin: KubeApiAdmin
) -> None:
    name = uid()
    garden_admin.inject(503, count=2, verbs=["*"], resource="shoots", name=name)
    garden_admin.cut_next_watch(after_events=1, watches=3, resource="shoots")
    result = await create(dev_client, gardener_queue, garden_api, name)
    assert result.created and shoot(garden_api, name)["status"]["lastOperation"]["state"] == "Succeeded"
    assert not [r for r in garden_admin.faults() if r.get("name") == name]  # every injected 503 was hit


async def upgrade(client: Client, queue: str, api: KubeApiServer, name: str, **kw: Any) -> ClusterUpgradeResult:
    inp = ClusterUpgradeInput(name=name, project_namespace=NS, garden=garden(api), **kw)
    return await execute(client, queue, "ClusterUpgradeWorkflow", inp, ClusterUpgradeResult, f"upgrade-{name}")


async def test_upgrade_two_minors_with_images_and_conflicts(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer, garden_admin: KubeApiAdmin
) -> None:
    name = uid("u")
    await create(dev_client, gardener_queue, garden_api, name)
    dry = await upgrade(dev_client, gardener_queue, garden_api, name, target_version="1.32.2", dry_run=True)
    assert dry.plan.versions() == ["1.31.4", "1.32.2"] and not dry.applied
    assert shoot(garden_api, name)["spec"]["kubernetes"]["version"] == "1.30.8"
    garden_admin.inject(409, count=2, verbs=["patch"], resource="shoots", name=name)
    result = await upgrade(
        dev_client, gardener_queue, garden_api, name, target_version="1.32.2", machine_image_version="latest"
    )
    assert [s.kubernetes_version or s.machine_image_version for s in result.applied] == [
        "1.31.4",
        "1.32.2",
        "1877.3.0",
    ]
    obj = shoot(garden_api, name)
    assert obj["spec"]["kubernetes"]["version"] == "1.32.2"
    assert obj["spec"]["provider"]["workers"][0]["machine"]["image"]["version"] == "1877.3.0"
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]


async def test_upgrade_plan_visible_before_first_patch(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer, garden_admin: KubeApiAdmin
) -> None:
    name = uid("q")
    await create(dev_client, gardener_queue, garden_api, name)
    garden_admin.inject(503, count=1000, verbs=["patch"], resource="shoots", name=name)
    handle = await dev_client.start_workflow(
        "ClusterUpgradeWorkflow",
        ClusterUpgradeInput(name=name, project_namespace=NS, garden=garden(garden_api), target_version="1.31.4"),
        id=f"upgrade-{name}",
        task_queue=gardener_queue,
        result_type=ClusterUpgradeResult,
    )
    status = ClusterStatus()
    for _ in range(100):
        status = await handle.query("status", result_type=ClusterStatus)
        if status.plan is not None:
            break
        await asyncio.sleep(0.05)
    assert status.plan is not None and status.plan.versions() == ["1.31.4"]
    assert shoot(garden_api, name)["spec"]["kubernetes"]["version"] == "1.30.8"  # not patched yet
    garden_admin.clear_faults()
    result = await handle.result()
    assert result.kubernetes_version == "1.31.4"


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("1.29.10", "cannot downgrade"),
        ("1.31.9", "not offered"),
        ("1.33.0", "preview"),
    ],
)
async def test_upgrade_bad_targets(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer, target: str, error: str
) -> None:
    name = uid("b")
    await create(dev_client, gardener_queue, garden_api, name)
    with pytest.raises(WorkflowFailureError) as err:
        await upgrade(dev_client, gardener_queue, garden_api, name, target_version=target)
    assert failure(err).type == "UpgradeNotPossible" and error in failure(err).message


async def test_delete_and_delete_again(dev_client: Client, gardener_queue: str, garden_api: KubeApiServer) -> None:
    name = uid("d")
    await create(dev_client, gardener_queue, garden_api, name)
    for existed in (True, False):
        result = await dev_client.execute_workflow(
            "ClusterDeleteWorkflow",
            ClusterDeleteInput(name=name, project_namespace=NS, garden=garden(garden_api)),
            id=f"delete-{name}-{existed}",
            task_queue=gardener_queue,
            result_type=ClusterDeleteResult,
        )
        assert result.existed is existed
    assert shoot_code(garden_api, name) == 404


async def test_maintain_upgrades_expiring_inside_window_only(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    open_, closed = uid("mo"), uid("mc")
    await create(dev_client, gardener_queue, garden_api, open_, cluster=spec(open_, version="1.29.10"))
    shut = shut_window()
    await create(
        dev_client,
        gardener_queue,
        garden_api,
        closed,
        cluster=spec(closed, version="1.29.10", maintenance=shut),
    )
    dry = await dev_client.execute_workflow(
        "ClusterMaintainWorkflow",
        ClusterMaintainInput(project_namespace=NS, names=[open_, closed], garden=garden(garden_api), dry_run=True),
        id=f"maintain-dry-{open_}",
        task_queue=gardener_queue,
        result_type=ClusterMaintainResult,
    )
    assert dry.planned == {open_: ["controlPlane -> 1.30.8", "worker:pool1 -> 1877.3.0"]} and not dry.upgraded
    assert shoot(garden_api, open_)["spec"]["kubernetes"]["version"] == "1.29.10"
    result = await dev_client.execute_workflow(
        "ClusterMaintainWorkflow",
        ClusterMaintainInput(project_namespace=NS, names=[open_, closed], garden=garden(garden_api)),
        id=f"maintain-{open_}",
        task_queue=gardener_queue,
        result_type=ClusterMaintainResult,
    )
    assert result.upgraded == [open_]
    assert "outside its maintenance window" in result.skipped[closed]
    obj = shoot(garden_api, open_)
    assert obj["spec"]["kubernetes"]["version"] == "1.30.8"
    assert obj["spec"]["provider"]["workers"][0]["machine"]["image"]["version"] == "1877.3.0"


async def test_wait_survives_compaction_410_and_cut_watches(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer, garden_admin: KubeApiAdmin
) -> None:
    name = uid("e")
    garden_admin.post("/admin/gardener/faults", {"fault": "stuck", "shoot": f"{NS}/{name}", "atProgress": 30})
    handle = await dev_client.start_workflow(
        "ClusterCreateWorkflow",
        ClusterCreateInput(cluster=spec(name), garden=garden(garden_api)),
        id=f"create-{name}",
        task_queue=gardener_queue,
        result_type=ClusterCreateResult,
    )
    for _ in range(200):
        status = await handle.query("status", result_type=ClusterStatus)
        if status.phase == "waiting" and garden_admin.stats()["activeWatches"] > 0:
            break
        await asyncio.sleep(0.05)
    expired = garden_admin.stats()["expiredWatches"]
    garden_admin.compact()  # the waiter's resourceVersion is now too old: a new watch answers 410
    assert garden_admin.cut_watches() >= 1
    await asyncio.sleep(0.3)
    garden_admin.client.delete("/admin/gardener/faults")  # release the stuck operation
    result = await handle.result()
    assert result.created and shoot(garden_api, name)["status"]["lastOperation"]["state"] == "Succeeded"
    assert garden_admin.stats()["expiredWatches"] > expired  # it did hit 410 and recovered by re-reading


async def test_workflow_histories_replay(dev_client: Client, gardener_queue: str, garden_api: KubeApiServer) -> None:
    """Determinism: the recorded histories of create and upgrade replay against today's code."""
    from temporalio.worker import Replayer

    from workers.config import data_converter
    from workers.worker import workflow_runner
    from workflows.cluster import WORKFLOWS

    name = uid("r")
    ids = [f"create-{name}", f"upgrade-{name}"]
    await dev_client.execute_workflow(
        "ClusterCreateWorkflow",
        ClusterCreateInput(cluster=spec(name), garden=garden(garden_api)),
        id=ids[0],
        task_queue=gardener_queue,
        result_type=ClusterCreateResult,
    )
    await dev_client.execute_workflow(
        "ClusterUpgradeWorkflow",
        ClusterUpgradeInput(name=name, project_namespace=NS, garden=garden(garden_api), target_version="1.31.4"),
        id=ids[1],
        task_queue=gardener_queue,
        result_type=ClusterUpgradeResult,
    )
    replayer = Replayer(
        debug_mode=True, workflows=WORKFLOWS, data_converter=data_converter(), workflow_runner=workflow_runner()
    )
    replayed = 0
    for wid in ids:
        history = await dev_client.get_workflow_handle(wid).fetch_history()
        await replayer.replay_workflow(history)
        replayed += 1
    assert replayed == 2


async def test_confined_rollout_waits_for_window_unless_reconcile(
    dev_client: Client, gardener_queue: str, garden_api: KubeApiServer
) -> None:
    name = uid("cf")
    shut = shut_window()
    await create(
        dev_client,
        gardener_queue,
        garden_api,
        name,
        cluster=spec(name, maintenance=shut, confine_spec_update_rollout=True),
    )
    with pytest.raises(WorkflowFailureError) as err:  # respects the window: the change is not rolled out
        await upgrade(
            dev_client,
            gardener_queue,
            garden_api,
            name,
            target_version="1.31.4",
            confined_rollout="wait",
            step_timeout_seconds=1.5,
        )
    assert failure(err).type == "ShootTimeout" and "not yet observed" in failure(err).message
    result = await upgrade(dev_client, gardener_queue, garden_api, name, target_version="1.31.4")
    assert result.applied == []  # already written by the first run; only released now
    obj = shoot(garden_api, name)
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["lastOperation"] == {
        **obj["status"]["lastOperation"],
        "type": "Reconcile",
        "state": "Succeeded",
    }
