"""One API server (with the simulated Gardener and the extra kinds) per test process."""

from __future__ import annotations

from tests.garden_fixtures import garden_admin_fixture, garden_api_fixture

kubeapi = garden_api_fixture("kubeapi", bookmark_interval=0.3)
admin = garden_admin_fixture("admin", api="kubeapi")
