"""docs/operations.md: every workflow JSON example starts its workflow on the dev server and finishes
successfully against the local landscape's parts (garden API, registries with the example component);
every webhook payload example is accepted by the gateway with the shipped configuration."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from definitions import queues
from landscape.gardener import samples
from landscape.kubeapi.part import KubeApiServer
from landscape.ocm_example import OCMExamplePart
from landscape.registry import RegistryPart
from triggers.app import create_app
from triggers.auth import sign
from triggers.config import DEFAULT_CONFIG, load_checked
from triggers.temporal import TemporalConnection
from workers.worker import build_workers

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("triggers-dev")]

DOC = Path(__file__).resolve().parents[3] / "docs" / "operations.md"
BLOCK = re.compile(r"<!-- (example|webhook): ([^>]*) -->\s*```json\n(.*?)```", re.S)


@dataclass
class Block:
    kind: str
    attrs: dict[str, str]
    text: str


def blocks(kind: str) -> list[Block]:
    out = []
    for m in BLOCK.finditer(DOC.read_text()):
        if m.group(1) == kind:
            attrs = dict(a.split("=", 1) for a in m.group(2).split())
            out.append(Block(kind, attrs, m.group(3)))
    return out


def test_docs_have_an_example_for_every_workflow_and_source() -> None:
    workflows = {b.attrs["workflow"] for b in blocks("example")}
    assert {
        "PipelineWorkflow",
        "ClusterCreateWorkflow",
        "ClusterUpgradeWorkflow",
        "ClusterMaintainWorkflow",
        "ClusterDeleteWorkflow",
        "ComponentTransportWorkflow",
    } <= workflows
    routes = {b.attrs["route"] for b in blocks("webhook")}
    assert {"registry", "alertmanager", "releases", "boot", "pipelines"} <= routes


@dataclass
class Peers:
    garden: KubeApiServer
    source: RegistryPart
    site: RegistryPart
    example: OCMExamplePart

    def env(self) -> dict[str, str]:
        return {**self.garden.env(), **self.site.env(), **self.source.env()}

    def substitutions(self) -> dict[str, str]:
        return {
            "http://127.0.0.1:5000/ocm": f"{self.source.url}/ocm",
            "https://127.0.0.1:5001/ocm": f"{self.site.url}/docs-{uuid.uuid4().hex[:6]}",
            ".apeiro/landscape/site/ca.pem": str(self.site.endpoints["ca_bundle"]),
            "file:.apeiro/landscape/ocm-example/site-signing.pem": f"file:{self.example.key_path}",
        }


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    if not Path("/usr/bin/docker-registry").exists():
        pytest.skip("Debian package docker-registry is not installed (see debian-packages.txt)")
    d = tmp_path_factory.mktemp("docs-peers")
    garden = KubeApiServer(settings={"gardener.speed": "3000"})
    source, site = RegistryPart("source"), RegistryPart("site", tls=True, username="apeiro")
    example = OCMExamplePart(source, site)
    started: list[Any] = []
    try:
        for part, name in ((garden, "garden"), (source, "source"), (site, "site"), (example, "ocm-example")):
            part.start(d / name)
            started.append(part)
        samples.seed(garden.url)
        yield Peers(garden, source, site, example)
    finally:
        for part in reversed(started):
            part.stop()


@pytest.fixture
async def all_workers(dev_client: Client, peers: Peers, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    for k, v in peers.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("APEIRO_DEFINITIONS", raising=False)
    workers = build_workers(dev_client, [queues.PIPELINE, queues.GARDENER, queues.OCM])
    async with workers[0], workers[1], workers[2]:
        yield


async def test_every_workflow_example_runs(dev_client: Client, peers: Peers, all_workers: None) -> None:
    subs = peers.substitutions()
    ran = []
    for i, block in enumerate(blocks("example")):
        text = block.text
        for old, new in subs.items():
            text = text.replace(old, new)
        arg = json.loads(text)
        wid = f"docs-{i}-{block.attrs['workflow']}-{uuid.uuid4().hex[:6]}"
        handle = await dev_client.start_workflow(
            block.attrs["workflow"],
            arg,
            id=wid,
            task_queue=block.attrs["queue"],
            execution_timeout=timedelta(minutes=3),
        )
        result = await handle.result()
        assert isinstance(result, dict), (block.attrs, result)
        if block.attrs["workflow"] == "PipelineWorkflow":
            assert result["state"] == "succeeded", result
        ran.append((block.attrs["workflow"], result))
    by_type = dict(ran)
    assert by_type["ClusterCreateWorkflow"]["kubernetes_version"] == "1.30.8"
    assert by_type["ClusterUpgradeWorkflow"]["kubernetes_version"] == "1.31.4"
    assert by_type["ClusterDeleteWorkflow"]["existed"] is True
    assert by_type["ComponentTransportWorkflow"]["versions"], by_type["ComponentTransportWorkflow"]
    assert by_type["ComponentTransportWorkflow"]["verified"] is True


KEYS = {
    "APEIRO_HOOK_REGISTRY_TOKEN": "t-reg",
    "APEIRO_HOOK_ALERTMANAGER_TOKEN": "t-am",
    "APEIRO_HOOK_RELEASES_KEY": "k-rel",
    "APEIRO_HOOK_BOOT_KEY": "k-boot",
    "APEIRO_HOOK_PIPELINES_KEY": "k-pipe",
}


async def test_every_webhook_example_is_accepted(dev_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("APEIRO_DEFINITIONS", raising=False)
    config = load_checked(DEFAULT_CONFIG)
    routes = {r.name: r for r in config.routes}
    app = create_app(config, temporal=TemporalConnection(client=dev_client))
    started = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as gw:
        for block in blocks("webhook"):
            route = routes[block.attrs["route"]]
            body = json.dumps(json.loads(block.text)).encode()
            headers = {"content-type": block.attrs["content-type"]}
            if route.auth.type == "bearer":
                headers["authorization"] = f"Bearer {KEYS[route.auth.tokens[0][4:]]}"  # type: ignore[union-attr]
            else:
                headers["x-apeiro-signature"] = sign(body, KEYS[route.auth.secrets[0][4:]])  # type: ignore[union-attr]
            resp = await gw.post(block.attrs.get("path", route.url_path), content=body, headers=headers)
            assert resp.status_code == 202, (block.attrs, resp.text)
            flows = resp.json()["workflows"]
            assert len(flows) == 1, (block.attrs, resp.json())
            started.append(flows[0]["workflow_id"])
    types = {}
    for wid in started:
        handle = dev_client.get_workflow_handle(wid)
        types[wid] = (await handle.describe()).workflow_type
        await handle.terminate("docs example: accepted, not run here")
    assert sorted(types.values()) == sorted(
        [
            "ComponentTransportWorkflow",
            "PipelineWorkflow",
            "PipelineWorkflow",
            "ServerProvisionWorkflow",
            "PipelineWorkflow",
        ]
    )
