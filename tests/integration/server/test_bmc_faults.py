"""Activities against a TLS emulator: TLS failure, CA bundle, insecure flag, wrong credentials,
unreachable BMC, 503 without client-side retries. No Temporal needed: activities are plain methods."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.redfish.activities import RedfishActivities
from activities.redfish.store import FileInventoryStore
from definitions.server import BmcConnection
from landscape.landscape import Landscape
from landscape.process import free_port
from landscape.redfish import RedfishEmulator
from tests.server_fixtures import WRONG_ENV, connection

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("redfish-tls")]


def emulator(land: Landscape) -> RedfishEmulator:
    emu = land.part("redfish")
    assert isinstance(emu, RedfishEmulator)
    return emu


def acts(tmp_path: Path) -> RedfishActivities:
    return RedfishActivities(store=FileInventoryStore(tmp_path))


def test_tls_with_ca_bundle_and_insecure_both_work(tls_site: Landscape, tmp_path: Path) -> None:
    emu = emulator(tls_site)
    assert emu.url.startswith("https://")
    for conn in (connection(emu, ca_bundle=emu.endpoints["ca_bundle"]), connection(emu, insecure=True)):
        assert len(acts(tmp_path).list_systems(conn).system_paths) == 1


def test_tls_failure_is_non_retryable_and_says_what_to_do(tls_site: Landscape, tmp_path: Path) -> None:
    emu = emulator(tls_site)
    with pytest.raises(ApplicationError) as info:
        acts(tmp_path).list_systems(connection(emu))
    assert info.value.type == "BmcTlsError" and info.value.non_retryable
    assert emu.url in info.value.message and "ca_bundle" in info.value.message


def test_wrong_credentials_non_retryable_naming_the_bmc(tls_site: Landscape, tmp_path: Path) -> None:
    emu = emulator(tls_site)
    with pytest.raises(ApplicationError) as info:
        acts(tmp_path).list_systems(connection(emu, password_env=WRONG_ENV, insecure=True))
    assert info.value.type == "BmcAuthenticationFailed" and info.value.non_retryable
    assert emu.url in info.value.message and "bmc-a" in info.value.message


def test_unreachable_bmc_is_retryable(tmp_path: Path) -> None:
    conn = BmcConnection(url=f"http://127.0.0.1:{free_port()}", name="gone", timeout_s=2)
    with pytest.raises(ApplicationError) as info:
        acts(tmp_path).list_systems(conn)
    assert info.value.type == "BmcUnreachable" and not info.value.non_retryable
    assert conn.url in info.value.message


def test_503_fails_fast_without_sushy_retries_then_recovers(tls_site: Landscape, tmp_path: Path) -> None:
    emu = emulator(tls_site)
    conn = connection(emu, insecure=True)
    a = acts(tmp_path)
    path = a.list_systems(conn).system_paths[0]
    from definitions.server import InventoryReadInput, SystemTarget

    emu.inject(unavailable_requests=1)
    try:
        with pytest.raises(ApplicationError) as info:
            a.inventory_system(InventoryReadInput(site="s", target=SystemTarget(bmc=conn, system_path=path)))
    finally:
        emu.inject()
    # One 503 answered the only attempt: sushy did not retry it behind Temporal's back.
    assert info.value.type == "BmcServerError" and not info.value.non_retryable
    summary = a.inventory_system(
        InventoryReadInput(site="s", target=SystemTarget(bmc=conn, system_path=path))
    )
    assert summary.identity == emu.systems[0]["uuid"]
