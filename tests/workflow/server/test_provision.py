"""Provision-and-image workflow on the time-skipping server against the emulator and its sidecar."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from definitions.server import (
    FirmwareUpdate,
    ImageSpec,
    OsReport,
    PowerRequest,
    PowerWait,
    ProvisionInput,
    ProvisionResult,
    ProvisionSpec,
    ServerRef,
    provision_workflow_id,
)
from landscape.landscape import Landscape
from landscape.redfish import RedfishEmulator
from tests.server_fixtures import BMC_PASSWORD, connection, redfish_worker
from workflows.server import ServerProvisionWorkflow

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("redfish-site")]


def parts(land: Landscape) -> tuple[RedfishEmulator, dict[str, str]]:
    emu = land.part("redfish")
    assert isinstance(emu, RedfishEmulator)
    return emu, land.part("images").endpoints


def ref(emu: RedfishEmulator, index: int) -> ServerRef:
    system: dict[str, Any] = emu.systems[index]
    return ServerRef(identity=system["uuid"], bmc=connection(emu), system_path=f"/redfish/v1/Systems/{system['uuid']}")


async def start(env: WorkflowEnvironment, queue: str, inp: ProvisionInput) -> WorkflowHandle[Any, ProvisionResult]:
    return await env.client.start_workflow(
        ServerProvisionWorkflow.run, inp, id=provision_workflow_id(inp.server.identity), task_queue=queue
    )


async def relay_boot_report(emu: RedfishEmulator, handle: WorkflowHandle[Any, ProvisionResult], identity: str) -> None:
    """Stand-in for the webhook gateway: pass the simulated OS's report-in to the workflow as a signal."""
    for _ in range(600):
        boots = await asyncio.to_thread(emu.boots)
        mine = [b for b in boots if b["identity"] == identity]
        if mine:
            # The payload the webhook gateway's boot route sends (triggers/sources/boot.py).
            event = {
                "server": identity,
                "boot_id": "b-1",
                "status": "booted",
                "ip": "10.0.0.7",
                "os_image": "gardenlinux",
                "event_id": f"{identity}-b-1",
            }
            await handle.signal("os_booted", event)
            return
        await asyncio.sleep(0.2)


async def test_provision_and_image_a_server(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, images = parts(redfish_site)
    server = ref(emu, 0)
    spec = ProvisionSpec(
        image=ImageSpec(url=images["url"], sha256=images["sha256"]),
        bios_attributes={"ProcVirtualization": "Disabled", "PowerProfile": "MaxPerf"},
        firmware=[FirmwareUpdate(image_uri=f"{images['base']}/bios-2.0.0.bin", component="BIOS", version="2.0.0")],
        report_in_timeout_s=120,
    )
    with ts_env.auto_time_skipping_disabled():
        async with redfish_worker(ts_env.client, task_queue, tmp_path) as acts:
            handle = await start(ts_env, task_queue, ProvisionInput(server=server, spec=spec))
            relay = asyncio.create_task(relay_boot_report(emu, handle, server.identity))
            result = await handle.result()
            await relay
            # A second run of the same definition finds every step done and changes nothing.
            again = await ts_env.client.execute_workflow(
                ServerProvisionWorkflow.run,
                ProvisionInput(server=server, spec=spec.model_copy(update={"image": None})),
                id=provision_workflow_id(server.identity) + "-again",
                task_queue=task_queue,
            )
            backend = acts._server(server)
            bios = backend.bios.get_attributes()
            firmware = {f.id: f.version for f in backend.firmware.list_firmware()}
            override = backend.boot.get_boot_override()
            slots = backend.virtual_media.list_slots()
    assert result.steps_done == [
        "bios",
        "firmware-0",
        "image-check",
        "media-insert",
        "boot-cd",
        "power-on",
        "os-reported-in",
        "media-eject",
        "boot-disk",
    ]
    assert "power-off" in result.steps_skipped
    assert result.os_report is not None and result.os_report.identity == server.identity
    assert bios["ProcVirtualization"] == "Disabled" and bios["PowerProfile"] == "MaxPerf"
    assert firmware["BIOS"] == "2.0.0"
    assert override["target"] == "Hdd" and override["enabled"] == "Continuous"
    assert not any(s.inserted for s in slots)
    assert set(again.steps_skipped) >= {"bios", "firmware-0"}


async def expect_failure(env: WorkflowEnvironment, queue: str, tmp_path: Path, inp: ProvisionInput) -> ApplicationError:
    async with redfish_worker(env.client, queue, tmp_path):
        handle = await start(env, queue, inp)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_server_that_never_reports_in(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, images = parts(redfish_site)
    # A short real timeout rather than a long skipped one: the session's time-skipping server stops
    # skipping while any other test's workflow waits on a real activity, and this test must not care.
    spec = ProvisionSpec(image=ImageSpec(url=images["url"], sha256=images["sha256"]), report_in_timeout_s=5)
    err = await expect_failure(ts_env, task_queue, tmp_path, ProvisionInput(server=ref(emu, 1), spec=spec))
    assert err.type == "ServerDidNotReportIn" and "within 5s" in err.message


async def test_image_url_that_404s(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, images = parts(redfish_site)
    url = images["base"] + "/no-such-image.iso"
    assert (await asyncio.to_thread(httpx.get, url)).status_code == 404
    spec = ProvisionSpec(image=ImageSpec(url=url, sha256=images["sha256"]))
    err = await expect_failure(ts_env, task_queue, tmp_path, ProvisionInput(server=ref(emu, 2), spec=spec))
    assert err.type == "ImageNotFound" and url in err.message


async def test_image_checksum_mismatch(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, images = parts(redfish_site)
    spec = ProvisionSpec(image=ImageSpec(url=images["url"], sha256="0" * 64))
    err = await expect_failure(ts_env, task_queue, tmp_path, ProvisionInput(server=ref(emu, 3), spec=spec))
    assert err.type == "ImageChecksumMismatch" and images["sha256"] in err.message
    # The image was never mounted.
    cd = await asyncio.to_thread(
        httpx.get,
        f"{emu.url}/redfish/v1/Systems/{emu.systems[3]['uuid']}/VirtualMedia/Cd",
        auth=("admin", BMC_PASSWORD),
    )
    backend_slots = cd.json()
    assert backend_slots["Inserted"] is False


async def test_firmware_image_missing_fails_the_task(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, images = parts(redfish_site)
    url = f"{images['base']}/bios-9.9.9.bin"
    spec = ProvisionSpec(firmware=[FirmwareUpdate(image_uri=url, component="BIOS", version="9.9.9")])
    err = await expect_failure(ts_env, task_queue, tmp_path, ProvisionInput(server=ref(emu, 2), spec=spec))
    assert err.type == "FirmwareUpdateFailed" and "Exception" in err.message and "404" in err.message


async def test_firmware_task_that_never_progresses(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, images = parts(redfish_site)
    spec = ProvisionSpec(
        firmware_timeout_s=10,
        firmware=[FirmwareUpdate(image_uri=f"{images['base']}/bmc-1.1.0.bin", component="BMC", version="1.1.0")],
    )
    await asyncio.to_thread(emu.inject, firmware_stuck=True)
    try:
        err = await expect_failure(ts_env, task_queue, tmp_path, ProvisionInput(server=ref(emu, 3), spec=spec))
    finally:
        await asyncio.to_thread(emu.inject)
    assert err.type == "FirmwareUpdateFailed" and "still Running" in err.message and "10s" in err.message


async def test_graceful_shutdown_ignored_then_forced_off(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, _ = parts(redfish_site)
    server = ref(emu, 4)
    await asyncio.to_thread(emu.inject, ignore_graceful=True)
    try:
        with ts_env.auto_time_skipping_disabled():
            async with redfish_worker(ts_env.client, task_queue, tmp_path) as acts:
                # Server 4 starts On, so the workflow has something to shut down.
                await asyncio.to_thread(acts.power, PowerRequest(server=server, action="On", done_when="On"))
                on = await asyncio.to_thread(acts.wait_power, PowerWait(server=server, target="On", timeout_s=60))
                assert on.reached
                handle = await ts_env.client.start_workflow(
                    ServerProvisionWorkflow.run,
                    ProvisionInput(
                        server=server, spec=ProvisionSpec(graceful_shutdown_timeout_s=2, power_timeout_s=60)
                    ),
                    id=provision_workflow_id(server.identity),
                    task_queue=task_queue,
                )
                result = await handle.result()
                history = await handle.fetch_history()
    finally:
        await asyncio.to_thread(emu.inject)
    actions = [
        e.activity_task_scheduled_event_attributes.input.payloads[0].data
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "redfish.power"
    ]
    assert [b'"GracefulShutdown"' in a for a in actions] == [True, False, False]
    assert b'"ForceOff"' in actions[1] and b'"On"' in actions[2]
    assert result.steps_done == ["power-off", "power-on"]


async def test_report_in_before_power_on_or_for_another_server_is_ignored(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, images = parts(redfish_site)
    # Image check fails on purpose at the end, after the early reports were sent during the wait.
    server = ref(emu, 2)
    spec = ProvisionSpec(image=ImageSpec(url=images["url"], sha256="1" * 64))
    async with redfish_worker(ts_env.client, task_queue, tmp_path):
        handle = await start(ts_env, task_queue, ProvisionInput(server=server, spec=spec))
        await handle.signal(ServerProvisionWorkflow.report_in, OsReport(identity=server.identity))
        await handle.signal(ServerProvisionWorkflow.report_in, OsReport(identity="someone-else"))
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        status = await handle.query(ServerProvisionWorkflow.status)
    assert status["ignored_reports"] == 2 and status["reported_in"] is False


async def test_failed_boot_reported_by_the_os(
    ts_env: WorkflowEnvironment, redfish_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, images = parts(redfish_site)
    server = ref(emu, 3)
    spec = ProvisionSpec(image=ImageSpec(url=images["url"], sha256=images["sha256"]), report_in_timeout_s=120)
    event = {"server": server.identity, "boot_id": "b-9", "status": "failed", "message": "no root disk found"}
    with ts_env.auto_time_skipping_disabled():
        async with redfish_worker(ts_env.client, task_queue, tmp_path):
            handle = await start(ts_env, task_queue, ProvisionInput(server=server, spec=spec))
            result = asyncio.ensure_future(handle.result())
            while not result.done():  # early callbacks (before power-on) are ignored, so keep calling
                await handle.signal("os_booted", event)
                await asyncio.wait([result], timeout=0.5)
            with pytest.raises(WorkflowFailureError) as info:
                await result
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "ServerBootFailed" and "no root disk found" in cause.message
