from __future__ import annotations

from collections.abc import Iterator

import pytest

from landscape.landscape import Landscape
from tests.server_fixtures import emulator_landscape


@pytest.fixture(scope="module")
def land(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landscape]:
    """The Redfish emulator for one test module, with the module's ``SYSTEMS`` servers (2 if unset)."""
    systems = getattr(request.module, "SYSTEMS", 2)
    with emulator_landscape(tmp_path_factory.mktemp("redfish"), systems=systems) as landscape:
        yield landscape


@pytest.fixture(scope="session")
def tls_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landscape]:
    """An emulator behind TLS (self-signed) with basic auth."""
    with emulator_landscape(tmp_path_factory.mktemp("redfish-tls"), systems=1, tls=True) as land:
        yield land
