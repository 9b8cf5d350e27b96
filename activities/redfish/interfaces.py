"""One small interface per concern, after Ironic's driver interfaces (power, boot, management,
bios, firmware, virtual media).

The activities only talk to these protocols, through a :class:`ServerInterfaces` (Ironic's
``task.driver``): ``srv.power.set_power(...)``, ``srv.bios.get_pending()``. ``activities.redfish.backend``
implements each of them over Redfish, one class per concern; an Ironic node (via openstacksdk) or an
IronCore Server (via its Kubernetes API) can implement the same protocols and stand in without
touching the activities' logic or the workflows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from definitions.server import FirmwareItem, SystemInventory, VirtualMediaSlot


class PowerInterface(Protocol):
    def get_power_state(self) -> str | None:
        """'On', 'Off', 'PoweringOn', 'PoweringOff' or None if the BMC does not say."""

    def set_power(self, action: str) -> None:
        """A Redfish ResetType: On, GracefulShutdown, ForceOff, ForceRestart, GracefulRestart."""


class BootInterface(Protocol):
    def get_boot_override(self) -> dict[str, str | None]:
        """{'target': 'Cd', 'enabled': 'Once', 'mode': 'UEFI'}"""

    def set_boot_override(self, target: str, enabled: str, mode: str | None) -> None: ...


class ManagementInterface(Protocol):
    def inventory(self) -> SystemInventory: ...


class BiosInterface(Protocol):
    def get_attributes(self) -> dict[str, object]: ...

    def get_pending(self) -> dict[str, object]: ...

    def set_pending(self, attributes: dict[str, object]) -> None:
        """Stage attributes; the BMC applies them at the next reset."""


class FirmwareInterface(Protocol):
    def list_firmware(self) -> list[FirmwareItem]: ...

    def simple_update(self, image_uri: str, targets: list[str], transfer_protocol: str | None) -> str:
        """Start an update; return the task monitor / task URI to watch."""

    def task_state(self, task_uri: str) -> tuple[str, int | None, str]:
        """(TaskState, PercentComplete, message)."""


class VirtualMediaInterface(Protocol):
    def list_slots(self) -> list[VirtualMediaSlot]: ...

    def insert(self, slot_path: str, image_url: str) -> None: ...

    def eject(self, slot_path: str) -> None: ...


@dataclass(frozen=True)
class ServerInterfaces:
    """Every concern of one server, each behind its own interface (one implementation per backend)."""

    power: PowerInterface
    boot: BootInterface
    management: ManagementInterface
    bios: BiosInterface
    firmware: FirmwareInterface
    virtual_media: VirtualMediaInterface
