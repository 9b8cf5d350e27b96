"""Virtual media over Redfish: CD/DVD slots of the system or its managers; insert and eject."""

from __future__ import annotations

from activities.redfish.backend.system import PartUnknown, RedfishSystem, _link
from definitions.server import VirtualMediaSlot


class RedfishVirtualMedia:
    """Implements :class:`activities.redfish.interfaces.VirtualMediaInterface` over Redfish."""

    def __init__(self, sys: RedfishSystem) -> None:
        self.sys = sys

    def list_slots(self) -> list[VirtualMediaSlot]:
        sysdoc = self.sys.system()
        colls: list[str] = []
        own = _link(sysdoc, "VirtualMedia")
        if own:
            colls.append(own)
        for mgr in sysdoc.get("Links", {}).get("ManagedBy", []) or []:
            ref = mgr.get("@odata.id") if isinstance(mgr, dict) else None
            if ref:
                try:
                    vm = _link(self.sys.get_part(ref, "Manager"), "VirtualMedia")
                except PartUnknown:
                    continue
                if vm and vm not in colls:
                    colls.append(vm)
        if not colls:
            raise PartUnknown("neither the system nor its managers link VirtualMedia")
        slots = []
        for coll in colls:
            for m in self.sys.members(coll, "VirtualMedia"):
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
        doc = self.sys.get(slot_path)
        target = (
            doc.get("Actions", {}).get("#VirtualMedia.InsertMedia", {}).get("target")
            or f"{slot_path}/Actions/VirtualMedia.InsertMedia"
        )
        self.sys.conn.post(target, data={"Image": image_url, "Inserted": True, "WriteProtected": True})

    def eject(self, slot_path: str) -> None:
        doc = self.sys.get(slot_path)
        target = (
            doc.get("Actions", {}).get("#VirtualMedia.EjectMedia", {}).get("target")
            or f"{slot_path}/Actions/VirtualMedia.EjectMedia"
        )
        self.sys.conn.post(target, data={})
