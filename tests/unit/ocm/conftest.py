"""Each OCI client test starts as a fresh process would: no registry known to want basic auth yet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from activities.ocm import oci


@pytest.fixture(autouse=True)
def _fresh_basic_registries() -> Iterator[None]:
    oci._BASIC_REGISTRIES.clear()
    yield
    oci._BASIC_REGISTRIES.clear()
