"""Standalone OpenStack Ironic (noauth, no message bus, SQLite) for the integration tier.

Only the redfish hardware type with virtual-media boot and the ramdisk deploy interface is enabled,
which is what the server lifecycle registers nodes with. Needs `pip install ironic` (~320 MB), so the
part raises a LandscapeError saying so when the package is absent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from landscape.part import Part
from landscape.process import LandscapeError, ManagedProcess, find_executable, free_port

CONFIG = """[DEFAULT]
auth_strategy = noauth
rpc_transport = none
enabled_hardware_types = redfish
enabled_boot_interfaces = redfish-virtual-media
enabled_deploy_interfaces = ramdisk
enabled_management_interfaces = redfish
enabled_power_interfaces = redfish
enabled_inspect_interfaces = no-inspect,redfish
enabled_bios_interfaces = no-bios,redfish
enabled_console_interfaces = no-console
enabled_firmware_interfaces = no-firmware,redfish
enabled_network_interfaces = noop
enabled_raid_interfaces = no-raid
enabled_rescue_interfaces = no-rescue
enabled_vendor_interfaces = no-vendor
default_network_interface = noop
host = apeiro-landscape
use_stderr = true
[api]
host_ip = 127.0.0.1
port = {port}
[database]
connection = sqlite:///{state}/ironic.sqlite
[dhcp]
dhcp_provider = none
[conductor]
automated_clean = false
[deploy]
http_root = {state}/httpboot
http_url = {http_url}
[redfish]
use_swift = false
[oslo_concurrency]
lock_path = {state}/locks
"""


def ironic_available() -> bool:
    try:
        find_executable("ironic")
    except LandscapeError:
        return False
    return True


class IronicService(Part):
    name = "ironic"

    def start(self, state_dir: Path) -> None:
        if not ironic_available():
            raise LandscapeError("Ironic is not installed; `pip install ironic` (integration tier only)")
        state_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        # Virtual-media deploys: Ironic publishes the boot ISO under http_root, served over http_url.
        http_root = state_dir / "httpboot"
        http_root.mkdir(exist_ok=True)
        http_port = free_port()
        http_url = f"http://127.0.0.1:{http_port}"
        web = ManagedProcess(
            "ironic httpboot",
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(http_root), str(http_port)],
            state_dir / "httpboot.log",
        )
        self.processes.append(web)
        web.start(lambda: httpx.get(http_url, timeout=1).status_code < 500)
        conf = state_dir / "ironic.conf"
        conf.write_text(CONFIG.format(port=port, state=state_dir, http_url=http_url))
        subprocess.run(
            [str(find_executable("ironic-dbsync")), "--config-file", str(conf), "create_schema"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        proc = ManagedProcess(
            "ironic", [str(find_executable("ironic")), "--config-file", str(conf)], state_dir / "ironic.log"
        )
        self.processes.append(proc)
        url = f"http://127.0.0.1:{port}"
        proc.start(lambda: httpx.get(f"{url}/v1", timeout=1).status_code == 200, timeout=60)
        self.endpoints = {"url": url}

    def env(self) -> dict[str, str]:
        return {"APEIRO_IRONIC_URL": self.endpoints.get("url", "")}
