"""Power over Redfish: the system's PowerState and the ComputerSystem.Reset action."""

from __future__ import annotations

from activities.redfish.backend.system import RedfishSystem


class RedfishPower:
    """Implements :class:`activities.redfish.interfaces.PowerInterface` over Redfish."""

    def __init__(self, sys: RedfishSystem) -> None:
        self.sys = sys

    def get_power_state(self) -> str | None:
        state = self.sys.system().get("PowerState")
        return state if isinstance(state, str) else None

    def set_power(self, action: str) -> None:
        doc = self.sys.system()
        target = (
            doc.get("Actions", {}).get("#ComputerSystem.Reset", {}).get("target")
            or f"{self.sys.system_path}/Actions/ComputerSystem.Reset"
        )
        self.sys.conn.post(target, data={"ResetType": action})
