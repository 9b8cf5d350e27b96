"""ServerUpdateWorkflow on the time-skipping server with an in-memory BMC (the activities' backend
hook): in sync touches nothing, `proceed` forces a running server off and on again, `drain` shuts it
down gracefully, an update that does not take fails with DriftPersists, an IronCore site is refused."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.redfish.activities import RedfishActivities
from activities.redfish.interfaces import ServerInterfaces
from activities.redfish.store import FileInventoryStore
from definitions.server import FirmwareItem, ServerUpdateResult
from tests.unit.server.test_redfish_interfaces import REF, FakeServer
from workers.worker import workflow_runner
from workflows.server import ServerProvisionWorkflow
from workflows.server_update import ServerUpdateWorkflow

pytestmark = pytest.mark.workflow


@dataclass
class Bmc(FakeServer):
    """The fake server, with firmware that updates (unless ``stuck``) and pending BIOS settings that
    apply at power on, as the emulator's do."""

    firmware: dict[str, str] = field(default_factory=lambda: {"BIOS": "1.0.0"})
    stuck: bool = False

    def set_power(self, action: str) -> None:
        super().set_power(action)
        if action == "On":
            self.bios.update(self.pending)
            self.pending.clear()

    def list_firmware(self) -> list[FirmwareItem]:
        return [FirmwareItem(id=k, version=v) for k, v in self.firmware.items()]

    def simple_update(self, image_uri: str, targets: list[str], transfer_protocol: str | None) -> str:
        self.writes.append(f"firmware {image_uri}")
        if not self.stuck:
            self.firmware["BIOS"] = image_uri.rsplit("-", 1)[-1].removesuffix(".bin")
        return "/redfish/v1/TaskService/Tasks/1"


async def update(env: WorkflowEnvironment, tmp_path: Path, bmc: Bmc, **kw: Any) -> ServerUpdateResult:
    interfaces = ServerInterfaces(power=bmc, boot=bmc, management=bmc, bios=bmc, firmware=bmc, virtual_media=bmc)
    acts = RedfishActivities(FileInventoryStore(tmp_path), poll_initial_s=0.01, backend=lambda ref: interfaces)
    queue = f"upd-{uuid.uuid4().hex[:6]}"
    with ThreadPoolExecutor(4) as pool:
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[ServerUpdateWorkflow, ServerProvisionWorkflow],
            activities=acts.all(),
            activity_executor=pool,
            workflow_runner=workflow_runner(),
        ):
            result: ServerUpdateResult = await env.client.execute_workflow(
                ServerUpdateWorkflow.run,
                {"server": REF.model_dump(), "site": "edge-7", **kw},
                id=f"upd-{uuid.uuid4().hex[:6]}",
                task_queue=queue,
                result_type=ServerUpdateResult,
            )
            return result


FIRMWARE = {
    "operation": "firmware",
    "firmware": [{"image_uri": "http://i/bios-2.0.0.bin", "component": "BIOS", "version": "2.0.0"}],
}


async def test_in_sync_touches_nothing(ts_env: WorkflowEnvironment, tmp_path: Path) -> None:
    bmc = Bmc(power="On", firmware={"BIOS": "2.0.0"})
    res = await update(ts_env, tmp_path, bmc, **FIRMWARE, in_use="proceed")
    assert (res.outcome, res.drift, bmc.writes) == ("in-sync", [], [])


async def test_proceed_forces_a_running_server_off_and_on(ts_env: WorkflowEnvironment, tmp_path: Path) -> None:
    bmc = Bmc(power="On")
    res = await update(
        ts_env, tmp_path, bmc, operation="bios", bios_attributes={"ProcTurboMode": "Disabled"}, in_use="proceed"
    )
    assert res.outcome == "updated" and res.drift == ["ProcTurboMode Enabled -> Disabled"]
    assert bmc.writes == ["power ForceOff", "bios ['ProcTurboMode']", "power On"]
    assert bmc.bios["ProcTurboMode"] == "Disabled" and bmc.power == "On"


async def test_drain_shuts_down_gracefully_and_off_servers_stay_off(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    bmc = Bmc(power="On")
    res = await update(ts_env, tmp_path, bmc, **FIRMWARE, in_use="drain")
    assert res.outcome == "updated" and "drain, powered on again" in res.detail
    assert bmc.writes == ["power GracefulShutdown", "firmware http://i/bios-2.0.0.bin", "power On"]
    idle = Bmc(power="Off")
    res = await update(ts_env, tmp_path, idle, **FIRMWARE, in_use="skip")  # Off: not in use
    assert res.outcome == "updated" and idle.writes == ["firmware http://i/bios-2.0.0.bin"] and idle.power == "Off"


async def test_an_update_that_does_not_take_fails(ts_env: WorkflowEnvironment, tmp_path: Path) -> None:
    with pytest.raises(WorkflowFailureError) as err:
        await update(ts_env, tmp_path, Bmc(stuck=True), **FIRMWARE)
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "DriftPersists"
    assert "still differs after the firmware update: BIOS 1.0.0 -> 2.0.0" in cause.message


async def test_an_ironcore_site_is_refused(ts_env: WorkflowEnvironment, tmp_path: Path) -> None:
    bmc = Bmc()
    with pytest.raises(WorkflowFailureError) as err:
        await update(ts_env, tmp_path, bmc, **FIRMWARE, backend="ironcore")
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "UnsupportedOnIronCore"
    assert "no BIOSSettings, BIOSVersion or BMCVersion" in cause.message and bmc.writes == []


async def test_bad_input_fails_once_with_the_path(ts_env: WorkflowEnvironment, tmp_path: Path) -> None:
    with pytest.raises(WorkflowFailureError) as err:
        await update(ts_env, tmp_path, Bmc(), operation="firmware", firmware=[{"image_uri": "http://i/x.bin"}])
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput"
    assert "component and version are required" in cause.message


async def test_a_rollout_typed_into_the_ui_with_an_ironcore_site_fails_once(ts_env: WorkflowEnvironment) -> None:
    """Raw JSON that does not validate (here: firmware waves on a site metal-operator owns) fails the
    rollout with InvalidInput and the reason, instead of failing its workflow task forever."""
    from workflows.rollout import FleetRolloutWorkflow

    raw = {
        "operation": "server.firmware",
        "with": {"firmware": FIRMWARE["firmware"]},
        "site": {"name": "rack-2", "backend": "ironcore", "bmcs": [{"url": "https://10.0.0.9"}]},
        "rollout": {"selector": {"kind": "server"}},
    }
    queue = f"roll-{uuid.uuid4().hex[:6]}"
    async with Worker(
        ts_env.client, task_queue=queue, workflows=[FleetRolloutWorkflow], workflow_runner=workflow_runner()
    ):
        with pytest.raises(WorkflowFailureError) as err:
            await ts_env.client.execute_workflow(
                "FleetRolloutWorkflow", raw, id=f"roll-{uuid.uuid4().hex[:6]}", task_queue=queue
            )
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput"
    assert "site rack-2 has backend ironcore: metal-operator owns its servers" in cause.message
