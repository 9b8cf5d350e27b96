"""Firmware over Redfish: the UpdateService inventory, SimpleUpdate and its task."""

from __future__ import annotations

from typing import Any

from activities.redfish.backend.system import PartUnknown, RedfishSystem, _int, _link
from definitions.server import FirmwareItem


class RedfishFirmware:
    """Implements :class:`activities.redfish.interfaces.FirmwareInterface` over Redfish."""

    def __init__(self, sys: RedfishSystem) -> None:
        self.sys = sys

    def update_service(self) -> dict[str, Any]:
        root = self.sys.get("/redfish/v1/")
        return self.sys.get_part(_link(root, "UpdateService"), "UpdateService")

    def list_firmware(self) -> list[FirmwareItem]:
        inv = _link(self.update_service(), "FirmwareInventory")
        return [
            FirmwareItem(
                id=str(m.get("Id", "")),
                name=m.get("Name"),
                version=m.get("Version"),
                updateable=m.get("Updateable"),
            )
            for m in self.sys.members(inv, "FirmwareInventory")
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
        resp = self.sys.conn.post(target, data=body)
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
        doc = self.sys.get(task_uri)
        messages = "; ".join(str(m.get("Message", "")) for m in doc.get("Messages", []) if isinstance(m, dict))
        return str(doc.get("TaskState", "Unknown")), _int(doc.get("PercentComplete")), messages
