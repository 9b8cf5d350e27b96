"""The emulated BMC keeps its open files bounded under many requests.

sushy-tools left one sqlite connection (a file descriptor) open per request until garbage collection;
at fleet scale (200 BMCs, bench.fleet) the emulator hit its open-file limit and answered 500, and
discovery missed 3 of 200 BMCs. landscape.sushy_emulator closes them."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from landscape.landscape import Landscape
from landscape.redfish import RedfishEmulator

pytestmark = [pytest.mark.integration]


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_emulator_open_files_stay_bounded_under_many_requests(tmp_path: Path) -> None:
    emu = RedfishEmulator(2, username="admin", password="pw", bmc_per_system=True)
    with Landscape([emu], state_dir=tmp_path).running():
        pid = emu.processes[0].pid
        assert pid is not None
        upstream = emu.endpoints["emulator"]
        with httpx.Client(auth=("admin", "pw"), timeout=10) as c:
            system = c.get(f"{upstream}/redfish/v1/Systems").json()["Members"][0]["@odata.id"]
            before = open_files(pid)
            for _ in range(300):
                assert c.get(upstream + system).status_code == 200
            # Through a per-system BMC port of the sidecar too (what discovery reads).
            for _ in range(50):
                assert c.get(f"{emu.bmc_urls[0]}/redfish/v1/Systems").status_code == 200
        after = open_files(pid)
    # Before the fix: about one more descriptor per request (~350 here).
    assert after - before < 40, f"the emulator holds {after} open files after 350 requests ({before} before)"
