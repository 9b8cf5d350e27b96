"""Two real registries (Debian docker-registry), the example component, and an `ocm` worker."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client

from activities.ocm.oci import Credentials, RegistryClient
from landscape.ocm_example import push_example
from landscape.registry import RegistryPart
from tests.integration.ocm.slow_worker import transport_worker
from tests.unit.ocm.helpers import key_pem, new_key, pub_pem


@dataclass
class Registries:
    source: RegistryPart
    site: RegistryPart
    keys: Path

    def site_client(self) -> RegistryClient:
        return RegistryClient(
            self.site.url,
            Credentials(self.site.username, self.site.password),
            ca_bundle=self.site.endpoints["ca_bundle"],
        )

    def source_client(self) -> RegistryClient:
        return RegistryClient(self.source.url)


@pytest.fixture(scope="session")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    if not (Path("/usr/bin/docker-registry").exists() or shutil.which("docker-registry")):
        pytest.skip("Debian package docker-registry is not installed (see debian-packages.txt)")
    d = tmp_path_factory.mktemp("registries")
    source = RegistryPart("source")
    site = RegistryPart("site", tls=True, username="apeiro")
    source.start(d / "source")
    try:
        site.start(d / "site")
    except Exception:
        source.stop()
        raise
    os.environ["APEIRO_TEST_SITE_PASSWORD"] = site.password or ""
    os.environ["APEIRO_TEST_WRONG_PASSWORD"] = "not-the-password"
    keys = d / "keys"
    keys.mkdir()
    signer, other = new_key(), new_key()
    (keys / "site.pem").write_bytes(key_pem(signer))
    (keys / "site.pub").write_bytes(pub_pem(signer))
    (keys / "other.pub").write_bytes(pub_pem(other))
    try:
        yield Registries(source, site, keys)
    finally:
        site.stop()
        source.stop()


@pytest.fixture(scope="session")
async def example(registries: Registries) -> str:
    """Source repository URL holding the example component (pushed once per session)."""
    url = f"{registries.source.url}/ocm"
    await push_example(url)
    return url


@pytest.fixture
def target_url(registries: Registries) -> str:
    """A fresh repository base on the site registry for each test."""
    return f"{registries.site.url}/t-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def ocm_worker(dev_client: Client, task_queue: str) -> AsyncIterator[str]:
    async with transport_worker(dev_client, task_queue):
        yield task_queue
