"""Boot over Redfish: the one-time boot source override on the system."""

from __future__ import annotations

from activities.redfish.backend.system import RedfishSystem


class RedfishBoot:
    """Implements :class:`activities.redfish.interfaces.BootInterface` over Redfish."""

    def __init__(self, sys: RedfishSystem) -> None:
        self.sys = sys

    def get_boot_override(self) -> dict[str, str | None]:
        boot = self.sys.system().get("Boot", {}) or {}
        return {
            "target": boot.get("BootSourceOverrideTarget"),
            "enabled": boot.get("BootSourceOverrideEnabled"),
            "mode": boot.get("BootSourceOverrideMode"),
        }

    def set_boot_override(self, target: str, enabled: str, mode: str | None) -> None:
        boot: dict[str, str] = {"BootSourceOverrideTarget": target, "BootSourceOverrideEnabled": enabled}
        if mode:
            boot["BootSourceOverrideMode"] = mode
        self.sys.conn.patch(self.sys.system_path, data={"Boot": boot})
