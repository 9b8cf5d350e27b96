"""`apeiro baremetal inventory` against sushy-static serving the DMTF public-rackmount1 mockup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from landscape.redfish import RedfishStatic
from tests.server_fixtures import shared_testdata
from workers.cli import main

MOCKUP = shared_testdata() / "redfish-mockups" / "public-rackmount1"

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def mockup_bmc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not MOCKUP.is_dir():
        pytest.skip(f"DMTF mockup not found at {MOCKUP} (shared testdata absent; set APEIRO_TESTDATA)")
    part = RedfishStatic(MOCKUP)
    part.start(tmp_path_factory.mktemp("sushy-static"))
    try:
        yield part.endpoints["url"]
    finally:
        part.stop()


def run_cli(argv: list[str]) -> int:
    """The real `apeiro` entry point (workers.cli.main), in process."""
    return main(argv)


def test_inventory_json_of_the_rackmount_mockup(mockup_bmc: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["baremetal", "inventory", "--bmc", mockup_bmc, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    [system] = data["systems"]
    assert system["processor_count"] == 2
    assert system["logical_processor_count"] == 16
    assert system["memory_gib"] == 96
    assert {n["mac"] for n in system["nics"]} >= {"12:44:6A:3B:04:11", "AA:BB:CC:DD:EE:00"}
    assert {f["id"]: f["version"] for f in system["firmware"]}["BMC"] == "1.45.455b66-rev4"
    assert system["bios_attributes"]["ProcHyperthreading"] == "Enabled"
    assert any(d["capacity_bytes"] for c in system["storage"] for d in c["drives"])
    assert system["manufacturer"] == "Contoso" and system["serial"] == "437XR1138R2"
    assert system["uuid"] == "38947555-7742-3448-3784-823347823834"


def test_inventory_table(mockup_bmc: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["baremetal", "inventory", "--bmc", mockup_bmc, "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert "2 sockets" in out and "16 logical processors" in out and "96.0 GiB" in out
    assert "firmware BMC" in out and "AA:BB:CC:DD:EE:00" in out


def test_unreachable_bmc_exits_nonzero(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from landscape.process import free_port

    assert (
        run_cli(["baremetal", "inventory", "--bmc", f"http://127.0.0.1:{free_port()}", "--timeout", "2"]) == 1
    )
    assert "unreachable" in capsys.readouterr().err


def test_username_without_password_env_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["baremetal", "inventory", "--bmc", "https://10.0.0.1", "--username", "root"]) == 2
    assert "--password-env" in capsys.readouterr().err
