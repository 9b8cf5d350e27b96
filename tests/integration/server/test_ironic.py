"""Registration in a real standalone Ironic (enroll -> manage -> available) against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.registration.ironic import IronicRegistrar
from definitions.server import ImageSpec, ServerSummary
from landscape.ironic import IronicService, ironic_available
from landscape.landscape import Landscape
from landscape.redfish import ImageServer, RedfishEmulator
from tests.server_fixtures import BMC_PASSWORD, PASSWORD_ENV, site

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("ironic"),
    pytest.mark.skipif(not ironic_available(), reason="Ironic not installed (`pip install ironic`)"),
]


@pytest.fixture(scope="module")
def ironic_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landscape]:
    import os

    os.environ[PASSWORD_ENV] = BMC_PASSWORD
    emu = RedfishEmulator(2, username="admin", password=BMC_PASSWORD, seed="ironic")
    land = Landscape([emu, ImageServer(size_mib=1), IronicService()], state_dir=tmp_path_factory.mktemp("ironic"))
    with land.running():
        yield land


def test_enroll_manage_provide_in_ironic(ironic_site: Landscape, tmp_path: Path) -> None:
    emu = ironic_site.part("redfish")
    assert isinstance(emu, RedfishEmulator)
    system = emu.systems[0]
    definition = site("ironic-site", emu.url)
    server = ServerSummary(
        identity=str(system["uuid"]),
        uuid=str(system["uuid"]),
        bmc_url=definition.connections()[0].url,
        system_path=f"/redfish/v1/Systems/{system['uuid']}",
        macs=["52:54:00:aa:bb:01"],
    )
    reg = IronicRegistrar(endpoint=ironic_site.part("ironic").endpoints["url"], wait_timeout_s=120)
    first = reg.register(server, definition.connections()[0], None)
    again = reg.register(server, definition.connections()[0], None)
    assert (first.created, first.state) == (True, "available")
    assert (again.created, again.state, again.object_id) == (False, "available", first.object_id)
    node = reg.conn.baremetal.get_node(first.object_id)
    assert node.driver == "redfish" and node.power_state in ("power off", "power on")
    assert node.driver_info["redfish_password"] == "******"  # Ironic masks it; it never came back to us


def test_deploy_through_ironic_virtual_media(ironic_site: Landscape) -> None:
    emu = ironic_site.part("redfish")
    assert isinstance(emu, RedfishEmulator)
    system = emu.systems[1]
    definition = site("ironic-site", emu.url)
    conn = definition.connections()[0]
    server = ServerSummary(
        identity=str(system["uuid"]),
        uuid=str(system["uuid"]),
        bmc_url=conn.url,
        system_path=f"/redfish/v1/Systems/{system['uuid']}",
    )
    images = ironic_site.part("images").endpoints
    reg = IronicRegistrar(
        endpoint=ironic_site.part("ironic").endpoints["url"],
        wait_timeout_s=180,
        poll_s=1,
        deploy_image=ImageSpec(url=images["url"], sha256=images["sha256"]),
    )
    result = reg.register(server, conn, None)
    assert result.state == "active"
    node = reg.conn.baremetal.get_node(result.object_id)
    assert node.instance_info["boot_iso"] == images["url"] and node.power_state == "power on"
    again = reg.register(server, conn, None)  # already active: nothing is redeployed
    assert (again.created, again.state) == (False, "active")
