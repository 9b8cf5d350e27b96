"""ORD: the gateway's configuration and document validate against the ORD JSON Schemas of the npm
package @open-resource-discovery/specification (installed by scripts/install-ord-schemas, which
`make install` runs), their cross-references resolve, and caching follows HTTP (ETag, 304)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from landscape.process import free_port
from tests.triggers_support import ENV, gateway_config
from triggers.app import create_app
from triggers.ord_document import DEFINITIONS, DOCUMENT_URL
from triggers.temporal import TemporalConnection
from workers.config import TemporalSettings

REPO = Path(__file__).resolve().parents[3]
SPEC = REPO / "build/ord/node_modules/@open-resource-discovery/specification/static/spec-v1/interfaces"


@pytest.fixture(scope="module")
def ord_schemas() -> dict[str, Any]:
    if not (SPEC / "Document.schema.json").exists():
        proc = subprocess.run([str(REPO / "scripts/install-ord-schemas")], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"scripts/install-ord-schemas failed (run `make install`): {proc.stderr[-800:]}"
    return {name: json.loads((SPEC / f"{name}.schema.json").read_text()) for name in ("Document", "Configuration")}


@pytest.fixture
async def gw(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    dead = TemporalSettings(address=f"127.0.0.1:{free_port()}")
    app = create_app(gateway_config(), temporal=TemporalConnection(lambda: dead))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.example") as client:
        yield client


def _errors(schema: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(doc)]


async def test_configuration_and_document_validate(gw: httpx.AsyncClient, ord_schemas: dict[str, Any]) -> None:
    config = (await gw.get("/.well-known/open-resource-discovery")).json()
    assert _errors(ord_schemas["Configuration"], config) == []
    assert config["baseUrl"] == "http://gw.example"
    (entry,) = config["openResourceDiscoveryV1"]["documents"]
    assert entry["url"] == DOCUMENT_URL
    doc = (await gw.get(entry["url"])).json()
    assert _errors(ord_schemas["Document"], doc) == []


async def test_a_broken_document_is_caught_by_the_schema(gw: httpx.AsyncClient, ord_schemas: dict[str, Any]) -> None:
    doc = (await gw.get(DOCUMENT_URL)).json()
    doc["apiResources"][0]["ordId"] = "not an ord id"
    del doc["packages"][0]["vendor"]
    errors = _errors(ord_schemas["Document"], doc)
    assert any(e.startswith("apiResources/0/ordId") for e in errors) and any(e.startswith("packages/0") for e in errors)


async def test_cross_references_resolve(gw: httpx.AsyncClient) -> None:
    doc = (await gw.get(DOCUMENT_URL)).json()
    packages = {p["ordId"] for p in doc["packages"]}
    bundles = {b["ordId"] for b in doc["consumptionBundles"]}
    vendors = {v["ordId"] for v in doc["vendors"]}
    products = {p["ordId"] for p in doc["products"]}
    resources = doc["apiResources"] + doc["eventResources"]
    assert {r["partOfPackage"] for r in resources} <= packages
    assert {b["ordId"] for r in resources for b in r.get("partOfConsumptionBundles", [])} <= bundles
    assert {p["vendor"] for p in doc["packages"]} | {p["vendor"] for p in doc["products"]} <= vendors
    assert {x for p in doc["packages"] for x in p.get("partOfProducts", [])} <= products
    ids = [r["ordId"] for r in resources]
    assert len(ids) == len(set(ids))
    # every resource definition is served, and is what its type says
    for r in resources:
        for d in r["resourceDefinitions"]:
            body = (await gw.get(d["url"])).json()
            assert ("openapi" in body) if d["type"] == "openapi-v3" else body["asyncapi"].startswith("2.")
    webhooks = (await gw.get(DEFINITIONS["webhooks"])).json()
    gateway = (await gw.get(DEFINITIONS["gateway"])).json()
    assert "/hooks/pipelines/{pipeline}" in webhooks["paths"] or any(p.startswith("/hooks/") for p in webhooks["paths"])
    assert set(gateway["paths"]) == {"/healthz", "/readyz"}
    krm = (await gw.get(DEFINITIONS["krm"])).json()
    assert "/apis/orchestrator.apeiro.dev/v1alpha1/namespaces/{namespace}/pipelineruns/{name}" in krm["paths"]
    assert "PipelineRun" in krm["components"]["schemas"]


async def test_etag_and_cache_control(gw: httpx.AsyncClient) -> None:
    for url in ("/.well-known/open-resource-discovery", DOCUMENT_URL, DEFINITIONS["krm"]):
        first = await gw.get(url)
        assert first.status_code == 200
        assert first.headers["cache-control"] == "public, max-age=300"
        etag = first.headers["etag"]
        again = await gw.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert (await gw.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
        assert (await gw.get(url, headers={"If-None-Match": f'W/{etag}, "x"'})).status_code == 304
