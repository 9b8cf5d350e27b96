from __future__ import annotations

from collections.abc import Iterator

import pytest

from landscape.landscape import Landscape
from tests.server_fixtures import emulator_landscape


@pytest.fixture(scope="session")
def tls_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landscape]:
    """An emulator behind TLS (self-signed) with basic auth."""
    with emulator_landscape(tmp_path_factory.mktemp("redfish-tls"), systems=1, tls=True) as land:
        yield land
