"""The Redfish activities go through the per-concern interfaces (activities/redfish/interfaces.py):
an in-memory backend stands in for a BMC, and the activities' check-before-act rules hold on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.redfish.activities import RedfishActivities
from activities.redfish.interfaces import ServerInterfaces
from activities.redfish.store import FileInventoryStore
from definitions.server import (
    BiosApply,
    BmcConnection,
    BootRequest,
    FirmwareItem,
    MediaRequest,
    PowerRequest,
    ServerRef,
    SystemInventory,
    VirtualMediaSlot,
)

REF = ServerRef(identity="srv-1", bmc=BmcConnection(url="https://bmc.example"), system_path="/redfish/v1/Systems/1")


@dataclass
class FakeServer:
    """One server kept in memory; every write is recorded, so a test sees what the activity did."""

    power: str = "Off"
    boot: dict[str, str | None] = field(
        default_factory=lambda: {"target": "None", "enabled": "Disabled", "mode": "UEFI"}
    )
    bios: dict[str, object] = field(default_factory=lambda: {"BootMode": "Uefi", "ProcTurboMode": "Enabled"})
    pending: dict[str, object] = field(default_factory=dict)
    slots: list[VirtualMediaSlot] = field(
        default_factory=lambda: [VirtualMediaSlot(id="CD1", path="/vm/CD1", media_types=["CD", "DVD"])]
    )
    writes: list[str] = field(default_factory=list)

    # PowerInterface
    def get_power_state(self) -> str | None:
        return self.power

    def set_power(self, action: str) -> None:
        self.writes.append(f"power {action}")
        self.power = "On" if action == "On" else "Off"

    # BootInterface
    def get_boot_override(self) -> dict[str, str | None]:
        return dict(self.boot)

    def set_boot_override(self, target: str, enabled: str, mode: str | None) -> None:
        self.writes.append(f"boot {target} {enabled}")
        self.boot = {"target": target, "enabled": enabled, "mode": mode}

    # ManagementInterface
    def inventory(self) -> SystemInventory:
        return SystemInventory(bmc_url=REF.bmc.url, system_path=REF.system_path, id="1", power_state=self.power)

    # BiosInterface
    def get_attributes(self) -> dict[str, object]:
        return dict(self.bios)

    def get_pending(self) -> dict[str, object]:
        return dict(self.pending)

    def set_pending(self, attributes: dict[str, object]) -> None:
        self.writes.append(f"bios {sorted(attributes)}")
        self.pending.update(attributes)

    # FirmwareInterface
    def list_firmware(self) -> list[FirmwareItem]:
        return [FirmwareItem(id="BIOS", version="1.0")]

    def simple_update(self, image_uri: str, targets: list[str], transfer_protocol: str | None) -> str:
        self.writes.append(f"firmware {image_uri}")
        return "/redfish/v1/TaskService/Tasks/1"

    def task_state(self, task_uri: str) -> tuple[str, int | None, str]:
        return "Completed", 100, ""

    # VirtualMediaInterface
    def list_slots(self) -> list[VirtualMediaSlot]:
        return [s.model_copy() for s in self.slots]

    def insert(self, slot_path: str, image_url: str) -> None:
        self.writes.append(f"insert {image_url}")
        self.slots[0] = self.slots[0].model_copy(update={"inserted": True, "image": image_url})

    def eject(self, slot_path: str) -> None:
        self.writes.append("eject")
        self.slots[0] = self.slots[0].model_copy(update={"inserted": False, "image": None})


@pytest.fixture
def fake(tmp_path: Path) -> tuple[FakeServer, RedfishActivities]:
    server = FakeServer()
    interfaces = ServerInterfaces(
        power=server, boot=server, management=server, bios=server, firmware=server, virtual_media=server
    )
    acts = RedfishActivities(FileInventoryStore(tmp_path), backend=lambda ref: interfaces)
    return server, acts


def test_power_checks_before_acting(fake: tuple[FakeServer, RedfishActivities]) -> None:
    server, acts = fake
    assert acts.power(PowerRequest(server=REF, action="On", done_when="On")).changed
    again = acts.power(PowerRequest(server=REF, action="On", done_when="On"))
    assert (again.changed, again.detail) == (False, "already On")
    assert server.writes == ["power On"]


def test_bios_stages_only_what_differs_and_rejects_unknown_attributes(
    fake: tuple[FakeServer, RedfishActivities],
) -> None:
    server, acts = fake
    out = acts.bios_apply(BiosApply(server=REF, attributes={"BootMode": "Uefi", "ProcTurboMode": "Disabled"}))
    assert (out.changed, out.detail) == (True, "pending: ProcTurboMode")
    assert not acts.bios_apply(BiosApply(server=REF, attributes={"ProcTurboMode": "Disabled"})).changed
    with pytest.raises(ApplicationError, match="no attribute"):
        acts.bios_apply(BiosApply(server=REF, attributes={"NoSuchThing": "x"}))
    assert server.writes == ["bios ['ProcTurboMode']"]


def test_virtual_media_and_boot_are_idempotent(fake: tuple[FakeServer, RedfishActivities]) -> None:
    server, acts = fake
    iso = "http://images/gardenlinux.iso"
    assert acts.virtual_media(MediaRequest(server=REF, image_url=iso)).changed
    assert not acts.virtual_media(MediaRequest(server=REF, image_url=iso)).changed
    assert acts.set_boot(BootRequest(server=REF, target="Cd", enabled="Once", mode="UEFI")).changed
    assert not acts.set_boot(BootRequest(server=REF, target="Cd", enabled="Once", mode="UEFI")).changed
    assert acts.virtual_media(MediaRequest(server=REF, image_url=None)).detail == "ejected"
    assert server.writes == [f"insert {iso}", "boot Cd Once", "eject"]
