"""One API server (with the simulated Gardener and the extra kinds) per test process."""

from __future__ import annotations

from pathlib import Path

from tests.garden_fixtures import garden_admin_fixture, garden_api_fixture

# Konfidence's CRDs (the landscape's own) give the generic client tests a CustomResourceDefinition kind.
KONFIDENCE_CRDS = Path(__file__).resolve().parents[3] / "landscape" / "crds" / "konfidence.cloud.yaml"

kubeapi = garden_api_fixture("kubeapi", bookmark_interval=0.3, crds=KONFIDENCE_CRDS)
admin = garden_admin_fixture("admin", api="kubeapi")
