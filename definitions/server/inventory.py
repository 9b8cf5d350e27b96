"""What discovery reads from a BMC: each system's inventory (processors, memory, NICs, drives,
firmware, boot options, virtual media), its stable identity, and the summary a pipeline fans out over."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, Field

__all__ = [
    "BmcInventory",
    "BootOption",
    "DriveInfo",
    "FirmwareItem",
    "MemoryModule",
    "NicInfo",
    "ProcessorInfo",
    "ServerSummary",
    "StorageControllerInfo",
    "SystemInventory",
    "VirtualMediaSlot",
    "server_identity",
]


class ProcessorInfo(BaseModel):
    id: str
    socket: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    cores: int | None = None
    threads: int | None = None
    max_speed_mhz: int | None = None


class MemoryModule(BaseModel):
    id: str
    capacity_mib: int | None = None
    type: str | None = None
    speed_mhz: int | None = None
    location: str | None = None


class NicInfo(BaseModel):
    id: str
    mac: str | None = None
    link_status: str | None = None
    speed_mbps: int | None = None
    ipv4: list[str] = Field(default_factory=list)


class DriveInfo(BaseModel):
    id: str
    model: str | None = None
    serial: str | None = None
    capacity_bytes: int | None = None
    media_type: str | None = None
    protocol: str | None = None


class StorageControllerInfo(BaseModel):
    id: str
    name: str | None = None
    drives: list[DriveInfo] = Field(default_factory=list)


class FirmwareItem(BaseModel):
    id: str
    name: str | None = None
    version: str | None = None
    updateable: bool | None = None


class BootOption(BaseModel):
    id: str
    name: str | None = None
    path: str | None = None


class VirtualMediaSlot(BaseModel):
    id: str
    path: str
    media_types: list[str] = Field(default_factory=list)
    inserted: bool | None = None
    image: str | None = None


class SystemInventory(BaseModel):
    """Everything one system's BMC tells us. A part the BMC lacks (501, absent link) is None and is
    named in `unknown` with the reason, so a half-implemented BMC still yields an inventory."""

    bmc_url: str
    system_path: str
    id: str
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    sku: str | None = None
    uuid: str | None = None
    bios_version: str | None = None
    power_state: str | None = None
    processor_count: int | None = None
    processor_model: str | None = None
    logical_processor_count: int | None = None
    core_count: int | None = None
    processors: list[ProcessorInfo] | None = None
    memory_gib: float | None = None
    memory_modules: list[MemoryModule] | None = None
    nics: list[NicInfo] | None = None
    storage: list[StorageControllerInfo] | None = None
    firmware: list[FirmwareItem] | None = None
    bios_attributes: dict[str, object] | None = None
    boot_options: list[BootOption] | None = None
    boot_override: dict[str, str | None] | None = None
    virtual_media: list[VirtualMediaSlot] | None = None
    unknown: dict[str, str] = Field(default_factory=dict, description="part -> why it is unknown")

    @property
    def identity(self) -> str:
        return server_identity(self.uuid, self.serial, self.bmc_url, self.system_path)

    def fingerprint(self) -> str:
        """A hash of what describes the hardware (not volatile state such as power or media)."""
        data = self.model_dump(exclude={"power_state", "virtual_media", "boot_override", "unknown"})
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def summary(self) -> ServerSummary:
        return ServerSummary(
            identity=self.identity,
            bmc_url=self.bmc_url,
            system_path=self.system_path,
            uuid=self.uuid,
            serial=self.serial,
            manufacturer=self.manufacturer,
            model=self.model,
            power_state=self.power_state,
            processor_count=self.processor_count,
            logical_processor_count=self.logical_processor_count,
            memory_gib=self.memory_gib,
            macs=[n.mac for n in self.nics or [] if n.mac],
            bios_version=self.bios_version,
            fingerprint=self.fingerprint(),
            unknown=sorted(self.unknown),
        )


def server_identity(uuid: str | None, serial: str | None, bmc_url: str, system_path: str) -> str:
    """Stable identity: the system UUID, else the serial number, else BMC URL + system path."""
    if uuid and uuid.strip("0-") != "":
        return uuid.lower()
    if serial and serial.strip():
        return f"serial-{serial.strip()}"
    return f"bmc-{hashlib.sha256(f'{bmc_url}{system_path}'.encode()).hexdigest()[:16]}"


class BmcInventory(BaseModel):
    """One BMC's systems, or why the BMC could not be read."""

    bmc_url: str
    name: str = ""
    systems: list[SystemInventory] = Field(default_factory=list)
    error: str | None = None
    error_type: str | None = None


class ServerSummary(BaseModel):
    """The compact record a discovery returns per server (full inventories go to the inventory store)."""

    identity: str
    bmc_url: str
    system_path: str
    uuid: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    power_state: str | None = None
    processor_count: int | None = None
    logical_processor_count: int | None = None
    memory_gib: float | None = None
    macs: list[str] = Field(default_factory=list)
    bios_version: str | None = None
    fingerprint: str = ""
    unknown: list[str] = Field(default_factory=list)
