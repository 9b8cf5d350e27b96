"""Management over Redfish: the full inventory of one system, every part the BMC does not provide
recorded as unknown instead of failing the read."""

from __future__ import annotations

from collections.abc import Callable

from sushy import exceptions as sx

from activities.redfish.backend.system import PartUnknown, RedfishSystem, _float, _int, _link
from activities.redfish.interfaces import BiosInterface, FirmwareInterface, VirtualMediaInterface
from definitions.server import (
    BootOption,
    DriveInfo,
    MemoryModule,
    NicInfo,
    ProcessorInfo,
    StorageControllerInfo,
    SystemInventory,
)


class RedfishManagement:
    """Implements :class:`activities.redfish.interfaces.ManagementInterface` over Redfish."""

    def __init__(
        self, sys: RedfishSystem, firmware: FirmwareInterface, bios: BiosInterface, virtual_media: VirtualMediaInterface
    ) -> None:
        self.sys = sys
        self.firmware = firmware
        self.bios = bios
        self.virtual_media = virtual_media

    def inventory(self) -> SystemInventory:
        doc = self.sys.system()
        summary = doc.get("ProcessorSummary") or {}
        mem = doc.get("MemorySummary") or {}
        inv = SystemInventory(
            bmc_url=self.sys.bmc_url,
            system_path=self.sys.system_path,
            id=str(doc.get("Id", self.sys.system_path)),
            name=doc.get("Name"),
            manufacturer=doc.get("Manufacturer"),
            model=doc.get("Model"),
            serial=doc.get("SerialNumber"),
            sku=doc.get("SKU"),
            uuid=doc.get("UUID"),
            bios_version=doc.get("BiosVersion"),
            power_state=doc.get("PowerState"),
            processor_count=_int(summary.get("Count")),
            processor_model=summary.get("Model"),
            logical_processor_count=_int(summary.get("LogicalProcessorCount")),
            core_count=_int(summary.get("CoreCount")),
            memory_gib=_float(mem.get("TotalSystemMemoryGiB")),
        )
        boot = doc.get("Boot") or {}
        inv.boot_override = {
            "target": boot.get("BootSourceOverrideTarget"),
            "enabled": boot.get("BootSourceOverrideEnabled"),
            "mode": boot.get("BootSourceOverrideMode"),
        }

        def part(name: str, fn: Callable[[], None]) -> None:
            try:
                fn()
            except PartUnknown as exc:
                inv.unknown[name] = str(exc)
            except sx.MissingAttributeError as exc:
                inv.unknown[name] = str(exc)

        def processors() -> None:
            cpus = [
                p
                for p in self.sys.members(_link(doc, "Processors"), "Processors")
                if p.get("ProcessorType", "CPU") == "CPU"
            ]
            inv.processors = [
                ProcessorInfo(
                    id=str(p.get("Id", "")),
                    socket=p.get("Socket"),
                    model=p.get("Model"),
                    manufacturer=p.get("Manufacturer"),
                    cores=_int(p.get("TotalCores")),
                    threads=_int(p.get("TotalThreads")),
                    max_speed_mhz=_int(p.get("MaxSpeedMHz")),
                )
                for p in cpus
            ]
            if inv.processor_count is None:
                inv.processor_count = len(cpus)
            if inv.logical_processor_count is None and cpus and all(c.threads for c in inv.processors):
                inv.logical_processor_count = sum(c.threads or 0 for c in inv.processors)
            if inv.core_count is None and cpus and all(c.cores for c in inv.processors):
                inv.core_count = sum(c.cores or 0 for c in inv.processors)
            if inv.processor_model is None and inv.processors:
                inv.processor_model = inv.processors[0].model

        def memory() -> None:
            mods = self.sys.members(_link(doc, "Memory"), "Memory")
            inv.memory_modules = [
                MemoryModule(
                    id=str(m.get("Id", "")),
                    capacity_mib=_int(m.get("CapacityMiB")),
                    type=m.get("MemoryDeviceType"),
                    speed_mhz=_int(m.get("OperatingSpeedMhz")),
                    location=m.get("DeviceLocator"),
                )
                for m in mods
            ]
            if inv.memory_gib is None and inv.memory_modules:
                inv.memory_gib = sum(m.capacity_mib or 0 for m in inv.memory_modules) / 1024

        def nics() -> None:
            inv.nics = [
                NicInfo(
                    id=str(n.get("Id", "")),
                    mac=n.get("MACAddress") or n.get("PermanentMACAddress"),
                    link_status=n.get("LinkStatus"),
                    speed_mbps=_int(n.get("SpeedMbps")),
                    ipv4=[
                        a.get("Address")
                        for a in n.get("IPv4Addresses") or []
                        if isinstance(a, dict) and a.get("Address")
                    ],
                )
                for n in self.sys.members(_link(doc, "EthernetInterfaces"), "EthernetInterfaces")
            ]

        def storage() -> None:
            controllers: list[StorageControllerInfo] = []
            try:
                stores = self.sys.members(_link(doc, "Storage"), "Storage")
            except PartUnknown:
                stores = []
            for s in stores:
                drives = []
                for d in s.get("Drives", []) or []:
                    ref = d.get("@odata.id") if isinstance(d, dict) else None
                    if not ref:
                        continue
                    try:
                        dd = self.sys.get_part(ref, "Drive")
                    except PartUnknown:
                        continue
                    drives.append(
                        DriveInfo(
                            id=str(dd.get("Id", "")),
                            model=dd.get("Model"),
                            serial=dd.get("SerialNumber"),
                            capacity_bytes=_int(dd.get("CapacityBytes")),
                            media_type=dd.get("MediaType"),
                            protocol=dd.get("Protocol"),
                        )
                    )
                controllers.append(StorageControllerInfo(id=str(s.get("Id", "")), name=s.get("Name"), drives=drives))
            if not controllers:
                for s in self.sys.members(_link(doc, "SimpleStorage"), "SimpleStorage"):
                    drives = [
                        DriveInfo(
                            id=str(d.get("Name", "")),
                            model=d.get("Model"),
                            capacity_bytes=_int(d.get("CapacityBytes")),
                        )
                        for d in s.get("Devices", []) or []
                    ]
                    controllers.append(
                        StorageControllerInfo(id=str(s.get("Id", "")), name=s.get("Name"), drives=drives)
                    )
            if not controllers and not stores:
                raise PartUnknown("the BMC offers neither Storage nor SimpleStorage")
            inv.storage = controllers

        def firmware() -> None:
            inv.firmware = self.firmware.list_firmware()

        def bios() -> None:
            inv.bios_attributes = self.bios.get_attributes()

        def boot_options() -> None:
            inv.boot_options = [
                BootOption(
                    id=str(o.get("Id", "")),
                    name=o.get("DisplayName") or o.get("Name"),
                    path=o.get("UefiDevicePath") or o.get("BootOptionReference"),
                )
                for o in self.sys.members(_link(doc, "Boot", "BootOptions"), "BootOptions")
            ]

        def virtual_media() -> None:
            inv.virtual_media = self.virtual_media.list_slots()

        part("processors", processors)
        part("memory", memory)
        part("nics", nics)
        part("storage", storage)
        part("firmware", firmware)
        part("bios", bios)
        part("boot_options", boot_options)
        part("virtual_media", virtual_media)
        if inv.processor_count is None:
            inv.unknown.setdefault("processor_count", "neither ProcessorSummary nor Processors")
        if inv.memory_gib is None:
            inv.unknown.setdefault("memory_total", "neither MemorySummary nor Memory modules with capacity")
        return inv
