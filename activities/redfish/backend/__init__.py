"""The Redfish backend: one implementation per server interface (``interfaces.py``), over one sushy
connection to one system. :func:`redfish_server` assembles them, as an Ironic driver does."""

from __future__ import annotations

import sushy

from activities.redfish.backend.bios import RedfishBios
from activities.redfish.backend.boot import RedfishBoot
from activities.redfish.backend.firmware import RedfishFirmware
from activities.redfish.backend.management import RedfishManagement
from activities.redfish.backend.power import RedfishPower
from activities.redfish.backend.system import ABSENT_CODES, PartUnknown, RedfishSystem, list_system_paths
from activities.redfish.backend.virtual_media import RedfishVirtualMedia
from activities.redfish.interfaces import ServerInterfaces

__all__ = ["ABSENT_CODES", "PartUnknown", "RedfishSystem", "list_system_paths", "redfish_server"]


def redfish_server(root: sushy.Sushy, bmc_url: str, system_path: str) -> ServerInterfaces:
    """Every interface of the system at ``system_path``, implemented over Redfish."""
    system = RedfishSystem(root, bmc_url, system_path)
    bios, firmware, media = RedfishBios(system), RedfishFirmware(system), RedfishVirtualMedia(system)
    return ServerInterfaces(
        power=RedfishPower(system),
        boot=RedfishBoot(system),
        management=RedfishManagement(system, firmware=firmware, bios=bios, virtual_media=media),
        bios=bios,
        firmware=firmware,
        virtual_media=media,
    )
