"""`make test` relies on `--dist loadgroup` keeping each `xdist_group` on one worker: tests of a group
share module fixtures (one metal-operator, one Temporal dev server) and some build on what an earlier
test of the group left. pytest-xdist marks a grouped test by suffixing its node id with ``@group``; when
a pytest release stops that from working (pytest 9.2, pytest-dev/pytest-xdist#1386) the groups dissolve
without any error and shared-peer tests turn flaky. This canary makes that loud."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.xdist_group("xdist-canary")


def test_loadgroup_keeps_the_group_in_the_node_id(request: pytest.FixtureRequest) -> None:
    # On a worker xdist sets `loadgroup` (its `dist` option reads "no" there).
    if not os.environ.get("PYTEST_XDIST_WORKER") or not getattr(request.config.option, "loadgroup", False):
        pytest.skip("checks xdist's grouping: runs only under `pytest -n N --dist loadgroup` (make test)")
    assert request.node.nodeid.endswith("@xdist-canary"), (
        f"node id {request.node.nodeid!r} lost its @group suffix: --dist loadgroup is not grouping tests "
        "(check the pytest / pytest-xdist versions against the pin in pyproject.toml)"
    )
