"""A kube API server with the simulated Konfidence Stage controller, and a real Prometheus, per process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from landscape.kubeapi.part import KubeApiServer
from landscape.prometheus import Prometheus
from tests.server_fixtures import shared_testdata


def upstream_konfidence_crds() -> Path | None:
    path = shared_testdata() / "crds" / "konfidence"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def stage_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    """The Stage controller on Konfidence's upstream CRDs when ../shared has them (else the landscape's own)."""
    settings = {"konfidence.deploySeconds": "0.1"}
    upstream = upstream_konfidence_crds()
    if upstream is not None:
        settings["crds.paths"] = str(upstream)
    part = KubeApiServer(plugins=("landscape.kubeapi.extra_kinds", "landscape.konfidence"),
                         settings=settings, seed_garden=False)
    part.start(Path(tmp_path_factory.mktemp("stage-api")))
    try:
        yield part
    finally:
        part.stop()


@pytest.fixture(scope="session")
def bare_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    """A landscape API server without Konfidence (no Stage CRD)."""
    part = KubeApiServer(plugins=(), seed_garden=False)
    part.start(Path(tmp_path_factory.mktemp("bare-api")))
    try:
        yield part
    finally:
        part.stop()


@pytest.fixture
def stage_faults(stage_api: KubeApiServer) -> Iterator[str]:
    url = f"{stage_api.url}/admin/konfidence/faults"
    try:
        yield url
    finally:
        httpx.delete(url, timeout=5)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    part = Prometheus(scrape_interval="1s")
    part.start(Path(tmp_path_factory.mktemp("prometheus")))
    try:
        yield part
    finally:
        part.stop()
