"""Server waves on the dev server against the Redfish emulator (one BMC per server, as real servers
have): a firmware wave touches only the servers whose firmware differs (drift), a server in use is
skipped or drained by the rollout's policy, a failure budget of 0 stops after the canary, an image
wave re-images (virtual media, simulated OS reporting in) only the server with another image."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from activities.freeze import ACTIVITIES as FREEZE
from activities.redfish.store import FileInventoryStore
from definitions.rollout import RolloutInput, RolloutResult
from definitions.server import DiscoverInput, DiscoverResult, ImageRecord, SiteDefinition
from landscape.landscape import Landscape
from landscape.os_callback import OsCallbackRelay
from landscape.redfish import ImageServer, RedfishEmulator
from tests.server_fixtures import BMC_PASSWORD, PASSWORD_ENV, redfish_worker, site
from workers.worker import workflow_runner
from workflows.rollout import FleetRolloutWorkflow
from workflows.server import ServerDiscoveryWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dev-server")]

AUTH = ("admin", BMC_PASSWORD)


@pytest.fixture
def rack(tmp_path: Path) -> Iterator[Landscape]:
    """Four emulated servers, each behind its own BMC, and an image server with firmware files."""
    os.environ[PASSWORD_ENV] = BMC_PASSWORD
    emu = RedfishEmulator(
        4,
        username="admin",
        password=BMC_PASSWORD,
        seed=f"fleet-{uuid.uuid4().hex[:6]}",
        firmware_seconds=0.3,
        boot_seconds=0.2,
        bmc_per_system=True,
    )
    land = Landscape([emu, ImageServer(size_mib=1)], state_dir=tmp_path / "rack")
    with land.running():
        yield land


def site_of(land: Landscape) -> SiteDefinition:
    """The rack as a site: servers 0-1 carry rack=r1, servers 2-3 rack=r2."""
    emu = land.part("redfish")
    definition = site(f"fleet-{uuid.uuid4().hex[:6]}", *emu.bmc_urls)
    for i, bmc in enumerate(definition.bmcs):
        bmc.labels = {"rack": "r1" if i < 2 else "r2"}
    return definition


@contextlib.asynccontextmanager
async def workers(client: Client, redfish_queue: str, store: Path) -> AsyncIterator[str]:
    """The redfish queue (server workflows and activities) and a rollout queue (as gardener serves it)."""
    rollout_queue = f"rollout-{uuid.uuid4().hex[:8]}"
    async with redfish_worker(client, redfish_queue, store):
        w = Worker(
            client,
            task_queue=rollout_queue,
            workflows=[FleetRolloutWorkflow],
            activities=list(FREEZE),
            workflow_runner=workflow_runner(),
        )
        async with w:
            yield rollout_queue


async def discover(client: Client, queue: str, definition: SiteDefinition) -> DiscoverResult:
    return await client.execute_workflow(
        ServerDiscoveryWorkflow.run,
        DiscoverInput(site=definition),
        id=f"discover-{uuid.uuid4().hex[:6]}",
        task_queue=queue,
    )


def rollout(definition: SiteDefinition, queue: str, operation: str, with_: dict[str, Any], **more: Any) -> RolloutInput:
    return RolloutInput.model_validate(
        {
            "operation": operation,
            "with": with_,
            "site": definition.model_dump(),
            "serverQueue": queue,
            "rollout": {"selector": {"kind": "server", "site": definition.name}, **more},
        }
    )


async def run(client: Client, queue: str, inp: RolloutInput) -> RolloutResult:
    return await client.execute_workflow(
        "FleetRolloutWorkflow", inp, id=f"rollout-{uuid.uuid4().hex[:6]}", task_queue=queue, result_type=RolloutResult
    )


def bios_version(bmc: str) -> str:
    doc = httpx.get(f"{bmc}/redfish/v1/UpdateService/FirmwareInventory/BIOS", auth=AUTH, timeout=5).json()
    return str(doc["Version"])


def system_path(bmc: str) -> str:
    return str(httpx.get(f"{bmc}/redfish/v1/Systems", auth=AUTH, timeout=5).json()["Members"][0]["@odata.id"])


def system_doc(bmc: str, suffix: str = "") -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{bmc}{system_path(bmc)}{suffix}", auth=AUTH, timeout=5).json()
    return doc


def power(bmc: str, reset: str, want: str) -> None:
    path = system_path(bmc)
    httpx.post(f"{bmc}{path}/Actions/ComputerSystem.Reset", json={"ResetType": reset}, auth=AUTH, timeout=5)
    deadline = time.monotonic() + 30
    while httpx.get(f"{bmc}{path}", auth=AUTH, timeout=5).json().get("PowerState") != want:
        assert time.monotonic() < deadline, f"{bmc} did not reach {want}"
        time.sleep(0.3)


def update_firmware(bmc: str, uri: str, version: str) -> None:
    httpx.post(
        f"{bmc}/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate", json={"ImageURI": uri}, auth=AUTH
    ).raise_for_status()
    deadline = time.monotonic() + 20
    while bios_version(bmc) != version:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def firmware(base: str, version: str = "2.0.0") -> dict[str, Any]:
    return {"firmware": [{"image_uri": f"{base}/bios-{version}.bin", "component": "BIOS", "version": version}]}


async def test_firmware_wave_touches_only_drifted_servers(
    dev_client: Client, rack: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, base = rack.part("redfish"), rack.part("images").endpoints["base"]
    definition = site_of(rack)
    # Server 0 already runs the desired BIOS firmware: the wave must leave it alone.
    await asyncio.to_thread(update_firmware, emu.bmc_urls[0], f"{base}/bios-2.0.0.bin", "2.0.0")
    async with workers(dev_client, task_queue, tmp_path / "store") as rq:
        found = await discover(dev_client, task_queue, definition)
        assert len(found.servers) == 4
        by_bmc = {s.bmc_url: s.identity for s in found.servers}
        res = await run(
            dev_client,
            rq,
            rollout(definition, task_queue, "server.firmware", firmware(base), waves=[1, "100%"], maxInFlight=2),
        )
    assert res.state == "done", res
    in_sync = by_bmc[emu.bmc_urls[0]]
    assert res.in_sync == [in_sync]
    assert sorted(res.succeeded) == sorted(set(by_bmc.values()) - {in_sync})
    targets = {t.name: t for w in res.waves for t in w.targets}
    assert targets[in_sync].state == "in-sync" and targets[in_sync].drift == []
    for name in res.succeeded:
        assert targets[name].drift == ["BIOS 1.0.0 -> 2.0.0"], targets[name]
    assert [bios_version(u) for u in emu.bmc_urls] == ["2.0.0"] * 4
    assert [len(w.targets) for w in res.waves] == [1, 3]

    # A selector by the site definition's labels, and one that matches nothing.
    async with workers(dev_client, task_queue, tmp_path / "store") as rq:
        res = await run(
            dev_client,
            rq,
            rollout(
                definition,
                task_queue,
                "server.firmware",
                firmware(base),
                selector={"kind": "server", "matchLabels": {"rack": "r2"}},
            ),
        )
        assert sorted(res.in_sync) == sorted(by_bmc[u] for u in emu.bmc_urls[2:]) and res.succeeded == []
        with pytest.raises(Exception) as err:
            await run(
                dev_client,
                rq,
                rollout(
                    definition,
                    task_queue,
                    "server.firmware",
                    firmware(base),
                    selector={"kind": "server", "matchLabels": {"rack": "r9"}},
                ),
            )
    assert "no server of site" in str(err.value.__cause__) and "rack=r9" in str(err.value.__cause__)


async def test_in_use_policy_skip_then_drain(
    dev_client: Client, rack: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu = rack.part("redfish")
    definition = site_of(rack)
    await asyncio.to_thread(power, emu.bmc_urls[1], "On", "On")  # server 1 runs: in use
    bios = {"bios_attributes": {"ProcVirtualization": "Disabled"}}
    async with workers(dev_client, task_queue, tmp_path / "store") as rq:
        found = await discover(dev_client, task_queue, definition)
        busy = next(s.identity for s in found.servers if s.bmc_url == emu.bmc_urls[1])
        sel = {"kind": "server", "matchLabels": {"rack": "r1"}}
        res = await run(
            dev_client, rq, rollout(definition, task_queue, "server.bios", bios, selector=sel, inUse="skip")
        )
        targets = {t.name: t for w in res.waves for t in w.targets}
        assert res.state == "done" and list(res.skipped) == [busy]
        assert "in use (power On); policy inUse: skip" in res.skipped[busy]
        assert targets[busy].drift == ["ProcVirtualization Enabled -> Disabled"]
        idle = next(n for n in targets if n != busy)
        assert targets[idle].state == "succeeded" and "staged" in targets[idle].message  # Off: pending only

        res = await run(
            dev_client,
            rq,
            rollout(definition, task_queue, "server.bios", bios, selector=sel, inUse="drain", drainTimeout="20s"),
        )
    targets = {t.name: t for w in res.waves for t in w.targets}
    assert res.state == "done" and busy in res.succeeded, res
    assert "drain, powered on again" in targets[busy].message
    bios_doc = await asyncio.to_thread(system_doc, emu.bmc_urls[1], "/Bios")
    assert bios_doc["Attributes"]["ProcVirtualization"] == "Disabled"
    assert (await asyncio.to_thread(system_doc, emu.bmc_urls[1]))["PowerState"] == "On"  # running again


async def test_failure_budget_stops_after_the_canary(
    dev_client: Client, rack: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, base = rack.part("redfish"), rack.part("images").endpoints["base"]
    definition = site_of(rack)
    async with workers(dev_client, task_queue, tmp_path / "store") as rq:
        await discover(dev_client, task_queue, definition)
        # The image does not exist: the BMC's update task ends in Exception.
        res = await run(
            dev_client,
            rq,
            rollout(
                definition,
                task_queue,
                "server.firmware",
                firmware(base, "9.9.9"),
                waves=[1, "50%", "100%"],
                failureBudget=0,
            ),
        )
    assert res.state == "stopped", res
    assert len(res.failed) == 1 and len(res.untouched) == 3 and res.succeeded == []
    (reason,) = res.failed.values()
    assert "ended Exception" in reason and "bios-9.9.9.bin" in reason
    assert [w.state for w in res.waves] == ["stopped", "pending", "pending"]
    assert [bios_version(u) for u in emu.bmc_urls] == ["1.0.0"] * 4


@pytest.fixture
def booting_rack(dev_landscape: Landscape, tmp_path: Path) -> Iterator[Landscape]:
    """Two servers whose simulated OS reports in through the relay (as `apeiro dev up` wires it)."""
    os.environ[PASSWORD_ENV] = BMC_PASSWORD
    relay = OsCallbackRelay(temporal=dev_landscape.part("temporal"))
    emu = RedfishEmulator(
        2,
        username="admin",
        password=BMC_PASSWORD,
        seed=f"img-{uuid.uuid4().hex[:6]}",
        boot_seconds=0.2,
        bmc_per_system=True,
    )
    emu.callback_from = relay
    land = Landscape([relay, emu, ImageServer(size_mib=1)], state_dir=tmp_path / "booting")
    with land.running():
        yield land


async def test_image_wave_reimages_only_servers_with_another_image(
    dev_client: Client, booting_rack: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu, images = booting_rack.part("redfish"), booting_rack.part("images").endpoints
    definition = site_of(booting_rack)
    store = FileInventoryStore(tmp_path / "store")
    image = {"image": {"url": images["url"], "sha256": images["sha256"]}, "report_in_timeout_s": 120}
    async with workers(dev_client, task_queue, tmp_path / "store") as rq:
        found = await discover(dev_client, task_queue, definition)
        current, old = (next(s.identity for s in found.servers if s.bmc_url == u) for u in emu.bmc_urls)
        # Server 0 was imaged with this image already; server 1 has no record (never imaged by us).
        store.put_image(definition.name, current, ImageRecord(url=images["url"], sha256=images["sha256"]))
        res = await run(dev_client, rq, rollout(definition, task_queue, "server.image", image, inUse="proceed"))
        assert res.state == "done" and res.in_sync == [current] and res.succeeded == [old], res
        targets = {t.name: t for w in res.waves for t in w.targets}
        assert targets[old].drift[0].startswith("image no image recorded -> ")
        assert "reported in" in targets[old].message
        record = store.get_image(definition.name, old)
        assert record is not None and record.sha256 == images["sha256"]
        assert [b["identity"] for b in emu.boots()] == [old]  # only the drifted server booted the image
        again = await run(dev_client, rq, rollout(definition, task_queue, "server.image", image))
    assert sorted(again.in_sync) == sorted([current, old]) and again.succeeded == []
