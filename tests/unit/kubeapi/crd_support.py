"""An in-process API server with CRDs loaded, and the upstream CRD folder (../shared/testdata/crds)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from landscape.kubeapi.app import build_server, make_app
from tests.server_fixtures import shared_testdata

REPO = Path(__file__).resolve().parents[3]
OWN_CRDS = REPO / "landscape" / "crds"
TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"


def upstream_crds(project: str) -> Path:
    path = shared_testdata() / "crds" / project
    if not path.is_dir():
        pytest.skip(f"upstream CRDs not found at {path} (../shared/testdata/crds; APEIRO_TESTDATA overrides)")
    return path


def client(*paths: Path | str, plugins: list[str] | None = None) -> TestClient:
    server = build_server(plugins or [], {"crds.paths": [str(p) for p in paths]} if paths else {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TestClient(make_app(server))


def collection(api_version: str, plural: str, namespace: str | None = "default") -> str:
    prefix = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


def causes(body: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((c.get("field", ""), c.get("reason", "")) for c in (body.get("details") or {}).get("causes") or [])
