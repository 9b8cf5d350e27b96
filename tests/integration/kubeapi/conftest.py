"""One API server (with the simulated Gardener and the extra kinds) per test process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from landscape.gardener import samples
from landscape.kubeapi.admin import KubeApiAdmin
from landscape.kubeapi.part import KubeApiServer


@pytest.fixture(scope="session")
def kubeapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    # Konfidence's CRDs (the landscape's own) give the generic client tests a CustomResourceDefinition kind.
    crds = Path(__file__).resolve().parents[3] / "landscape" / "crds" / "konfidence.cloud.yaml"
    part = KubeApiServer(settings={"gardener.speed": "3000", "crds.paths": str(crds)}, bookmark_interval=0.3)
    part.start(Path(tmp_path_factory.mktemp("kubeapi")))
    try:
        samples.seed(part.url)
        yield part
    finally:
        part.stop()


@pytest.fixture(scope="session")
def admin(kubeapi: KubeApiServer) -> Iterator[KubeApiAdmin]:
    client = KubeApiAdmin(kubeapi.url)
    try:
        yield client
    finally:
        client.close()
