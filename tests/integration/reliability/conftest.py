"""A Temporal dev server of our own (persistent db, restartable) for the reliability tests.

Encryption and crash tests change which workers poll the `pipeline` queue and restart the server, so
they must not share the dev server other integration tests use.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from landscape.temporal import TemporalDevServer

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def own_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalDevServer]:
    state = tmp_path_factory.mktemp("reliability-temporal")
    server = TemporalDevServer(headless=True, persistent=True)
    server.start(state)
    server.state_dir = state  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


def child_env(server: TemporalDevServer, **extra: str) -> dict[str, str]:
    return {**os.environ, **server.env(), "PYTHONPATH": str(REPO), **extra}
