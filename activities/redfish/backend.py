"""The Redfish implementation of every server layer, over a sushy connection.

Reads go through sushy's connector as plain JSON documents rather than sushy's resource classes:
real BMCs omit, misspell or 501 whole parts, and the inventory must record those as unknown instead
of failing on sushy's strict parsing. Writes are the standard Redfish actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sushy
from sushy import exceptions as sx

from definitions.server import (
    BootOption,
    DriveInfo,
    FirmwareItem,
    MemoryModule,
    NicInfo,
    ProcessorInfo,
    StorageControllerInfo,
    SystemInventory,
    VirtualMediaSlot,
)

#: HTTP codes that mean "this BMC does not have that part": recorded as unknown, not an error.
#: 503 and connection errors are *not* here: they are transient and must fail the activity (retry).
ABSENT_CODES = {400, 404, 405, 500, 501}


class PartUnknown(Exception):
    """A part the BMC does not provide; carries the reason recorded in the inventory."""


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _float(v: Any) -> float | None:
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _link(doc: dict[str, Any], *keys: str) -> str | None:
    cur: Any = doc
    for k in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    if isinstance(cur, dict):
        odata = cur.get("@odata.id")
        return odata if isinstance(odata, str) else None
    return None


class RedfishServer:
    """One system behind one BMC. Implements :class:`activities.redfish.interfaces.ServerBackend`."""

    def __init__(self, root: sushy.Sushy, bmc_url: str, system_path: str) -> None:
        self.root = root
        self.conn = root._conn
        self.bmc_url = bmc_url
        self.system_path = system_path

    # -- plumbing ------------------------------------------------------------------------------------

    def get(self, path: str) -> dict[str, Any]:
        data: dict[str, Any] = self.conn.get(path).json()
        return data

    def get_part(self, path: str | None, what: str) -> dict[str, Any]:
        if not path:
            raise PartUnknown(f"the BMC links no {what}")
        try:
            return self.get(path)
        except sx.HTTPError as exc:
            if exc.status_code in ABSENT_CODES:
                raise PartUnknown(f"GET {path}: HTTP {exc.status_code}") from None
            raise

    def members(self, path: str | None, what: str) -> list[dict[str, Any]]:
        coll = self.get_part(path, what)
        out = []
        for m in coll.get("Members", []):
            ref = m.get("@odata.id") if isinstance(m, dict) else None
            if not ref:
                continue
            try:
                out.append(self.get_part(ref, what))
            except PartUnknown:
                continue
        return out

    def system(self) -> dict[str, Any]:
        return self.get(self.system_path)

    # -- power ---------------------------------------------------------------------------------------

    def get_power_state(self) -> str | None:
        state = self.system().get("PowerState")
        return state if isinstance(state, str) else None

    def set_power(self, action: str) -> None:
        doc = self.system()
        target = (
            doc.get("Actions", {}).get("#ComputerSystem.Reset", {}).get("target")
            or f"{self.system_path}/Actions/ComputerSystem.Reset"
        )
        self.conn.post(target, data={"ResetType": action})

    # -- boot ----------------------------------------------------------------------------------------

    def get_boot_override(self) -> dict[str, str | None]:
        boot = self.system().get("Boot", {}) or {}
        return {
            "target": boot.get("BootSourceOverrideTarget"),
            "enabled": boot.get("BootSourceOverrideEnabled"),
            "mode": boot.get("BootSourceOverrideMode"),
        }

    def set_boot_override(self, target: str, enabled: str, mode: str | None) -> None:
        boot: dict[str, str] = {"BootSourceOverrideTarget": target, "BootSourceOverrideEnabled": enabled}
        if mode:
            boot["BootSourceOverrideMode"] = mode
        self.conn.patch(self.system_path, data={"Boot": boot})

    # -- bios ----------------------------------------------------------------------------------------

    def bios_doc(self) -> dict[str, Any]:
        return self.get_part(_link(self.system(), "Bios"), "Bios")

    def get_attributes(self) -> dict[str, object]:
        attrs = self.bios_doc().get("Attributes") or {}
        return dict(attrs)

    def settings_path(self) -> str:
        bios = self.bios_doc()
        path = _link(bios, "@Redfish.Settings", "SettingsObject")
        if not path:
            raise PartUnknown("the BIOS resource has no @Redfish.Settings object (no pending settings)")
        return path

    def get_pending(self) -> dict[str, object]:
        return dict(self.get_part(self.settings_path(), "Bios/Settings").get("Attributes") or {})

    def set_pending(self, attributes: dict[str, object]) -> None:
        self.conn.patch(self.settings_path(), data={"Attributes": attributes})

    # -- firmware ------------------------------------------------------------------------------------

    def update_service(self) -> dict[str, Any]:
        root = self.get("/redfish/v1/")
        return self.get_part(_link(root, "UpdateService"), "UpdateService")

    def list_firmware(self) -> list[FirmwareItem]:
        inv = _link(self.update_service(), "FirmwareInventory")
        return [
            FirmwareItem(
                id=str(m.get("Id", "")),
                name=m.get("Name"),
                version=m.get("Version"),
                updateable=m.get("Updateable"),
            )
            for m in self.members(inv, "FirmwareInventory")
        ]

    def simple_update(self, image_uri: str, targets: list[str], transfer_protocol: str | None) -> str:
        svc = self.update_service()
        action = svc.get("Actions", {}).get("#UpdateService.SimpleUpdate", {})
        target = action.get("target")
        if not target:
            raise PartUnknown("the UpdateService offers no SimpleUpdate action")
        body: dict[str, Any] = {"ImageURI": image_uri}
        if targets:
            body["Targets"] = targets
        if transfer_protocol:
            body["TransferProtocol"] = transfer_protocol
        resp = self.conn.post(target, data=body)
        location = resp.headers.get("Location")
        if not location:
            try:
                location = resp.json().get("@odata.id")
            except ValueError:
                location = None
        if not location:
            raise PartUnknown("SimpleUpdate returned no task (no Location header, no @odata.id)")
        return str(location)

    def task_state(self, task_uri: str) -> tuple[str, int | None, str]:
        doc = self.get(task_uri)
        messages = "; ".join(
            str(m.get("Message", "")) for m in doc.get("Messages", []) if isinstance(m, dict)
        )
        return str(doc.get("TaskState", "Unknown")), _int(doc.get("PercentComplete")), messages

    # -- virtual media -------------------------------------------------------------------------------

    def list_slots(self) -> list[VirtualMediaSlot]:
        sysdoc = self.system()
        colls: list[str] = []
        own = _link(sysdoc, "VirtualMedia")
        if own:
            colls.append(own)
        for mgr in sysdoc.get("Links", {}).get("ManagedBy", []) or []:
            ref = mgr.get("@odata.id") if isinstance(mgr, dict) else None
            if ref:
                try:
                    vm = _link(self.get_part(ref, "Manager"), "VirtualMedia")
                except PartUnknown:
                    continue
                if vm and vm not in colls:
                    colls.append(vm)
        if not colls:
            raise PartUnknown("neither the system nor its managers link VirtualMedia")
        slots = []
        for coll in colls:
            for m in self.members(coll, "VirtualMedia"):
                slots.append(
                    VirtualMediaSlot(
                        id=str(m.get("Id", "")),
                        path=str(m.get("@odata.id", "")),
                        media_types=list(m.get("MediaTypes") or []),
                        inserted=m.get("Inserted"),
                        image=m.get("Image") or None,
                    )
                )
        return slots

    def insert(self, slot_path: str, image_url: str) -> None:
        doc = self.get(slot_path)
        target = (
            doc.get("Actions", {}).get("#VirtualMedia.InsertMedia", {}).get("target")
            or f"{slot_path}/Actions/VirtualMedia.InsertMedia"
        )
        self.conn.post(target, data={"Image": image_url, "Inserted": True, "WriteProtected": True})

    def eject(self, slot_path: str) -> None:
        doc = self.get(slot_path)
        target = (
            doc.get("Actions", {}).get("#VirtualMedia.EjectMedia", {}).get("target")
            or f"{slot_path}/Actions/VirtualMedia.EjectMedia"
        )
        self.conn.post(target, data={})

    # -- inventory -----------------------------------------------------------------------------------

    def inventory(self) -> SystemInventory:
        doc = self.system()
        summary = doc.get("ProcessorSummary") or {}
        mem = doc.get("MemorySummary") or {}
        inv = SystemInventory(
            bmc_url=self.bmc_url,
            system_path=self.system_path,
            id=str(doc.get("Id", self.system_path)),
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
                for p in self.members(_link(doc, "Processors"), "Processors")
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
            mods = self.members(_link(doc, "Memory"), "Memory")
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
                for n in self.members(_link(doc, "EthernetInterfaces"), "EthernetInterfaces")
            ]

        def storage() -> None:
            controllers: list[StorageControllerInfo] = []
            try:
                stores = self.members(_link(doc, "Storage"), "Storage")
            except PartUnknown:
                stores = []
            for s in stores:
                drives = []
                for d in s.get("Drives", []) or []:
                    ref = d.get("@odata.id") if isinstance(d, dict) else None
                    if not ref:
                        continue
                    try:
                        dd = self.get_part(ref, "Drive")
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
                controllers.append(
                    StorageControllerInfo(id=str(s.get("Id", "")), name=s.get("Name"), drives=drives)
                )
            if not controllers:
                for s in self.members(_link(doc, "SimpleStorage"), "SimpleStorage"):
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
            inv.firmware = self.list_firmware()

        def bios() -> None:
            inv.bios_attributes = self.get_attributes()

        def boot_options() -> None:
            inv.boot_options = [
                BootOption(
                    id=str(o.get("Id", "")),
                    name=o.get("DisplayName") or o.get("Name"),
                    path=o.get("UefiDevicePath") or o.get("BootOptionReference"),
                )
                for o in self.members(_link(doc, "Boot", "BootOptions"), "BootOptions")
            ]

        def virtual_media() -> None:
            inv.virtual_media = self.list_slots()

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


def list_system_paths(root: sushy.Sushy) -> list[str]:
    coll: dict[str, Any] = root._conn.get(root._systems_path or "/redfish/v1/Systems").json()
    return [m["@odata.id"] for m in coll.get("Members", []) if isinstance(m, dict) and "@odata.id" in m]
