from __future__ import annotations

from collections.abc import Iterator

import pytest

from landscape.landscape import Landscape
from tests.server_fixtures import emulator_landscape


@pytest.fixture(scope="session")
def redfish_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landscape]:
    """One emulator (basic auth, 5 systems) and an image server for the server workflow tests."""
    with emulator_landscape(tmp_path_factory.mktemp("redfish"), systems=5) as land:
        yield land
