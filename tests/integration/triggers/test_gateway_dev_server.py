"""The gateway against the Temporal dev server: each source starts or signals its workflow, the same
event (redelivered, replayed, concurrent) has one workflow, and a delivery refused with 503 while
Temporal was down succeeds unchanged later."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from definitions import queues
from landscape.landscape import Landscape
from landscape.process import free_port
from tests.triggers_support import (
    BOOT_QUEUE,
    alert_payload,
    asgi_client,
    bearer,
    cloud_event,
    gateway_app,
    registry_envelope,
    signed,
)
from triggers.temporal import TemporalConnection
from workers.config import TemporalSettings
from workers.worker import build_workers

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("triggers-dev")]


@workflow.defn(name="BootWaitWorkflow", sandboxed=False)
class BootWaitWorkflow:
    """Stands in for the server provision workflow: waits for two boot callbacks."""

    def __init__(self) -> None:
        self.boots: list[dict[str, Any]] = []

    @workflow.run
    async def run(self, server: str) -> list[dict[str, Any]]:
        await workflow.wait_condition(lambda: len(self.boots) >= 2, timeout=timedelta(minutes=5))
        return self.boots

    @workflow.signal(name="os_booted")
    def os_booted(self, event: dict[str, Any]) -> None:
        if all(b["event_id"] != event["event_id"] for b in self.boots):  # redelivered callbacks are ignored
            self.boots.append(event)


@pytest.fixture
async def gw(dev_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    app = gateway_app(tmp_path, monkeypatch, TemporalConnection(client=dev_client))
    workers = build_workers(dev_client, [queues.PIPELINE])
    boot_worker = Worker(dev_client, task_queue=BOOT_QUEUE, workflows=[BootWaitWorkflow])
    async with (
        workers[0],
        boot_worker,
        asgi_client(app) as client,
    ):
        yield client


async def runs_of(client: Client, workflow_id: str, expect: int) -> int:
    """Count runs with this id (visibility is eventually consistent: wait until it shows ``expect``)."""
    count = 0
    for _ in range(50):
        count = len([w async for w in client.list_workflows(f'WorkflowId = "{workflow_id}"')])
        if count >= expect:
            break
        await asyncio.sleep(0.1)
    return count


def only_workflow(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 202, resp.text
    flows = resp.json()["workflows"]
    assert len(flows) == 1, flows
    return dict(flows[0])


async def test_generic_route_starts_once_and_redelivery_uses_existing(
    gw: httpx.AsyncClient, dev_client: Client
) -> None:
    req = signed({"inputs": {"message": "hello"}, "eventId": "gen-1"})
    first = only_workflow(await gw.post("/hooks/pipelines/hook-echo", **req))
    assert first["action"] == "started"
    assert first["ui"].endswith(f"/namespaces/default/workflows/{first['workflow_id']}")
    result = await dev_client.get_workflow_handle(first["workflow_id"]).result()
    assert result["outputs"]["message"] == "hello"
    again = only_workflow(
        await gw.post("/hooks/pipelines/hook-echo", **signed({"inputs": {"message": "hello"}, "eventId": "gen-1"}))
    )
    assert again["workflow_id"] == first["workflow_id"] and again["action"] == "existing"
    assert await runs_of(dev_client, first["workflow_id"], 1) == 1


async def test_same_event_delivered_concurrently_starts_one_workflow(gw: httpx.AsyncClient, dev_client: Client) -> None:
    body = {"inputs": {"message": "burst"}}
    answers = await asyncio.gather(
        *(gw.post("/hooks/pipelines/hook-echo", **signed(body, **{"idempotency-key": "burst-1"})) for _ in range(10))
    )
    ids = {only_workflow(a)["workflow_id"] for a in answers}
    assert len(ids) == 1
    wid = ids.pop()
    await dev_client.get_workflow_handle(wid).result()
    await asyncio.sleep(0.5)  # let visibility catch up before asserting there is exactly one run
    assert await runs_of(dev_client, wid, 1) == 1


async def test_replayed_delivery_starts_nothing_new(gw: httpx.AsyncClient, dev_client: Client) -> None:
    req = signed({"inputs": {"message": "replay"}})  # no key: the id is a hash of pipeline and inputs
    first = only_workflow(await gw.post("/hooks/pipelines/hook-echo", **req))
    await dev_client.get_workflow_handle(first["workflow_id"]).result()
    replay = only_workflow(await gw.post("/hooks/pipelines/hook-echo", **req))  # the identical bytes and header
    assert replay["workflow_id"] == first["workflow_id"] and replay["action"] == "existing"


async def test_registry_push_starts_component_transport(gw: httpx.AsyncClient, dev_client: Client) -> None:
    envelope = registry_envelope("reg-evt-1", tag="1.2.3.build-7")
    flow = only_workflow(await gw.post("/hooks/registry", **bearer(envelope)))
    handle = dev_client.get_workflow_handle(flow["workflow_id"])
    desc = await handle.describe()
    assert desc.workflow_type == "ComponentTransportWorkflow" and desc.task_queue == queues.OCM
    history = await handle.fetch_history()
    arg = json.loads(history.events[0].workflow_execution_started_event_attributes.input.payloads[0].data)
    assert arg["source"]["url"] == "http://127.0.0.1:5000/ocm"
    assert arg["components"] == [{"name": "example.apeiro.dev/edge-app", "version": "1.2.3+7"}]
    assert flow["workflow_id"] == "registry-reg-evt-1"
    await handle.terminate("test done (no ocm worker here)")


async def test_alertmanager_labels_choose_the_pipeline(gw: httpx.AsyncClient, dev_client: Client) -> None:
    flow = only_workflow(await gw.post("/hooks/alerts", **bearer(alert_payload("HookTest", "fp-a", instance="bmc-7"))))
    assert flow["rule"] == "echo"
    result = await dev_client.get_workflow_handle(flow["workflow_id"]).result()
    assert result["outputs"]["message"] == "bmc-7"

    shoot = only_workflow(
        await gw.post("/hooks/alerts", **bearer(alert_payload("ShootReconcileFailed", "fp-b", shoot="edge-1")))
    )
    assert shoot["rule"] == "shoot"
    handle = dev_client.get_workflow_handle(shoot["workflow_id"])
    assert (await handle.describe()).workflow_type == "PipelineWorkflow"
    await handle.terminate("test done (no gardener worker here)")

    resolved = await gw.post(
        "/hooks/alerts", **bearer(alert_payload("HookTest", "fp-a", status="resolved", instance="bmc-7"))
    )
    assert resolved.status_code == 202 and resolved.json()["workflows"] == []
    unknown = await gw.post("/hooks/alerts", **bearer(alert_payload("SomethingElse", "fp-c")))
    assert unknown.status_code == 202 and unknown.json()["ignored"]


async def test_cloudevents_structured_and_binary_are_one_event(gw: httpx.AsyncClient, dev_client: Client) -> None:
    event = cloud_event("rel-42", version="2.0.0")
    structured = only_workflow(
        await gw.post("/hooks/releases", **signed(event, content_type="application/cloudevents+json"))
    )
    headers = {"ce-specversion": "1.0", "ce-id": "rel-42", "ce-source": event["source"], "ce-type": event["type"]}
    binary = only_workflow(await gw.post("/hooks/releases", **signed(event["data"], **headers)))
    assert binary["workflow_id"] == structured["workflow_id"]
    result = await dev_client.get_workflow_handle(structured["workflow_id"]).result()
    assert result["outputs"]["message"] == "example.apeiro.dev/edge-app@2.0.0"
    other = only_workflow(
        await gw.post(
            "/hooks/releases",
            **signed({"component": "c", "version": "1"}, **{**headers, "ce-id": "rel-43", "ce-subject": "x"}),
        )
    )
    assert other["workflow_id"] != structured["workflow_id"]
    await dev_client.get_workflow_handle(other["workflow_id"]).result()


async def test_boot_callbacks_signal_with_start(gw: httpx.AsyncClient, dev_client: Client) -> None:
    missing = await gw.post("/hooks/boot-plain", **signed({"server": "node-9", "boot_id": "b0"}))
    assert missing.status_code == 404 and "no running workflow" in missing.json()["error"]

    first = only_workflow(await gw.post("/hooks/boot", **signed({"server": "node-1", "boot_id": "b1"})))
    assert first["action"] == "signal-with-start" and first["workflow_id"] == "boot-wait-node-1"
    dup = only_workflow(await gw.post("/hooks/boot", **signed({"server": "node-1", "boot_id": "b1"})))
    assert dup["workflow_id"] == "boot-wait-node-1"
    second = only_workflow(
        await gw.post("/hooks/boot-plain", **signed({"server": "node-1", "boot_id": "b2", "os_version": "1592.9"}))
    )
    assert second["action"] == "signalled"
    boots = await dev_client.get_workflow_handle("boot-wait-node-1").result()
    assert [b["boot_id"] for b in boots] == ["b1", "b2"] and boots[1]["os_version"] == "1592.9"


async def test_unreachable_temporal_then_retry_succeeds(
    dev_landscape: Landscape, dev_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = {"address": f"127.0.0.1:{free_port()}"}
    conn = TemporalConnection(lambda: TemporalSettings(address=target["address"]))
    app = gateway_app(tmp_path, monkeypatch, conn)
    req = signed({"inputs": {"message": "later"}, "eventId": "outage-1"})
    async with asgi_client(app) as gw:
        down = await gw.post("/hooks/pipelines/hook-echo", **req)
        assert down.status_code == 503 and down.headers["retry-after"]
        target["address"] = dev_landscape.part("temporal").endpoints["address"]
        up = only_workflow(await gw.post("/hooks/pipelines/hook-echo", **req))  # the sender's retry, unchanged
    assert up["action"] == "started" and up["workflow_id"] == "pipelines-hook-echo-outage-1"
    await dev_client.get_workflow_handle(up["workflow_id"]).terminate("test done")
