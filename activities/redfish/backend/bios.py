"""BIOS over Redfish: current attributes, and pending ones staged on the settings object."""

from __future__ import annotations

from typing import Any

from activities.redfish.backend.system import PartUnknown, RedfishSystem, _link


class RedfishBios:
    """Implements :class:`activities.redfish.interfaces.BiosInterface` over Redfish."""

    def __init__(self, sys: RedfishSystem) -> None:
        self.sys = sys

    def bios_doc(self) -> dict[str, Any]:
        return self.sys.get_part(_link(self.sys.system(), "Bios"), "Bios")

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
        return dict(self.sys.get_part(self.settings_path(), "Bios/Settings").get("Attributes") or {})

    def set_pending(self, attributes: dict[str, object]) -> None:
        self.sys.conn.patch(self.settings_path(), data={"Attributes": attributes})
