"""The landscape's garden API server (simulated Gardener, fast clock, sample CloudProfile and
project) as a session fixture, for every test package that needs one.

A conftest declares it under the name its tests use:

    kubeapi = garden_api_fixture("kubeapi")
    admin = garden_admin_fixture("admin", api="kubeapi")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from landscape.gardener import samples
from landscape.kubeapi.admin import KubeApiAdmin
from landscape.kubeapi.part import KubeApiServer


def garden_api_fixture(
    name: str, bookmark_interval: float = 0.3, speed: str = "3000", crds: Path | None = None
) -> Callable[..., Any]:
    """A session fixture ``name``: one seeded API server per test process, stopped at the end
    (``crds``: a CustomResourceDefinition file it serves from the start)."""

    @pytest.fixture(scope="session", name=name)
    def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
        settings = {"gardener.speed": speed}
        if crds is not None:
            settings["crds.paths"] = str(crds)
        part = KubeApiServer(settings=settings, bookmark_interval=bookmark_interval)
        part.start(Path(tmp_path_factory.mktemp(name)))
        try:
            samples.seed(part.url)
            yield part
        finally:
            part.stop()

    return api


def garden_admin_fixture(name: str, api: str) -> Callable[..., Any]:
    """A session fixture ``name``: the admin client (fault injection, clock) of fixture ``api``."""

    @pytest.fixture(scope="session", name=name)
    def admin(request: pytest.FixtureRequest) -> Iterator[KubeApiAdmin]:
        server: KubeApiServer = request.getfixturevalue(api)
        client = KubeApiAdmin(server.url)
        try:
            yield client
        finally:
            client.close()

    return admin
