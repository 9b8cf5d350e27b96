"""docs/operations.md: every workflow JSON example starts its workflow and finishes successfully against
the whole local landscape (`apeiro dev up`'s: Temporal, garden API with the Konfidence controller,
registries with the example component, the emulated BMC, Prometheus); every webhook payload example
is accepted by the gateway with the shipped configuration."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from landscape.landscape import Landscape
from landscape.local import local_landscape
from landscape.process import free_port
from triggers.app import create_app
from triggers.auth import sign
from triggers.config import DEFAULT_CONFIG, load_checked
from triggers.demo import DEMO_APPROVER, result_granting_approvals
from triggers.temporal import TemporalConnection
from workers.cli.promote import approve_waiting
from workers.config import data_converter
from workers.queues import known_queues
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


@pytest.fixture(scope="module")
def landscape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landscape]:
    """The whole local landscape `apeiro dev up` / `make demo` start (its own Temporal dev server)."""
    if not Path("/usr/bin/docker-registry").exists():
        pytest.skip("Debian package docker-registry is not installed (see debian-packages.txt)")
    land = local_landscape(tmp_path_factory.mktemp("docs-landscape"), ui_port=free_port())
    with land.running():
        yield land


def substitute(value: Any, inputs: dict[str, Any]) -> Any:
    """The docs' `apeiro dev up` addresses -> this landscape's (free ports, a temporary state dir)."""
    if isinstance(value, dict):
        if "bmcs" in value:  # a site definition: this landscape's emulated BMC
            return inputs["serverSite"]
        return {k: substitute(v, inputs) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, inputs) for v in value]
    if not isinstance(value, str):
        return value
    replacements = {
        "http://127.0.0.1:5000/ocm": inputs["ocmSource"],
        "https://127.0.0.1:5001/ocm": inputs["ocmTarget"],
        ".apeiro/landscape/site/ca.pem": inputs["ocmTargetCa"],
        "file:.apeiro/landscape/ocm-example/site-signing.pem": inputs["ocmSigningKey"],
        "http://127.0.0.1:9090": inputs["prometheusUrl"],
    }
    for old, new in replacements.items():
        value = value.replace(old, new)
    return value


async def test_every_workflow_example_runs(landscape: Landscape, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in landscape.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("APEIRO_DEFINITIONS", raising=False)
    inputs: dict[str, Any] = {}
    for part in landscape.parts:
        inputs.update(part.pipeline_inputs())
    client = await Client.connect(landscape.part("temporal").endpoints["address"], data_converter=data_converter())
    ran = []
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(client, known_queues()):
            await stack.enter_async_context(worker)
        for i, block in enumerate(blocks("example")):
            arg = substitute(json.loads(block.text), inputs)
            wid = f"docs-{i}-{block.attrs['workflow']}-{uuid.uuid4().hex[:6]}"
            handle = await client.start_workflow(
                block.attrs["workflow"],
                arg,
                id=wid,
                task_queue=block.attrs["queue"],
                execution_timeout=timedelta(minutes=3),
            )
            if arg.get("pipeline") == "release-promotion":  # its production ring waits for an approver
                result = await result_granting_approvals(
                    client, wid, arg["inputs"]["version"], DEMO_APPROVER, approve_waiting
                )
            else:
                result = await handle.result()
            assert isinstance(result, dict), (block.attrs, result)
            if block.attrs["workflow"] == "PipelineWorkflow":
                assert result["state"] == "succeeded", result
            ran.append((block.attrs["workflow"], arg, result))
    by_type = {workflow: result for workflow, _, result in ran}
    assert by_type["ClusterCreateWorkflow"]["kubernetes_version"] == "1.30.8"
    assert by_type["ClusterUpgradeWorkflow"]["kubernetes_version"] == "1.31.4"
    assert by_type["ClusterDeleteWorkflow"]["existed"] is True
    assert by_type["ComponentTransportWorkflow"]["versions"], by_type["ComponentTransportWorkflow"]
    assert by_type["ComponentTransportWorkflow"]["verified"] is True
    assert len(by_type["ServerDiscoveryWorkflow"]["servers"]) == 4
    assert by_type["PromotionWorkflow"]["status"]["state"] == "Succeeded"
    pipelines = {arg["pipeline"]: result for workflow, arg, result in ran if workflow == "PipelineWorkflow"}
    assert len(pipelines["site-reinventory"]["outputs"]["servers"]) == 4
    assert pipelines["release-promotion"]["outputs"]["state"] == "Succeeded"


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
    boot = next(b for b in blocks("webhook") if b.attrs["route"] == "boot")
    boot_body = json.dumps({**json.loads(boot.text), "server": f"docs-{uuid.uuid4().hex[:6]}"}).encode()
    started = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as gw:
        # A boot callback for a server no provision waits for starts nothing: 404, the OS retries.
        nobody = await gw.post(
            "/hooks/boot",
            content=boot_body,
            headers={
                "content-type": "application/json",
                "x-apeiro-signature": sign(boot_body, KEYS["APEIRO_HOOK_BOOT_KEY"]),
            },
        )
        assert nobody.status_code == 404 and "no running workflow" in nobody.text, nobody.text
        # The example's callback reaches a provision that waits: stand one in on a queue no worker polls.
        await dev_client.start_workflow(
            "ServerProvisionWorkflow",
            {},
            task_queue=f"docs-idle-{uuid.uuid4().hex[:6]}",
            id=f"server-provision-{json.loads(boot.text)['server']}",
        )
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
