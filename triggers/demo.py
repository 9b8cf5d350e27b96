"""For `make demo`: one workflow started by a webhook and one by a schedule, against a running landscape.

Call :func:`show_triggers` from the demo after its workers run (it needs a worker on the pipeline
queue). It serves the real gateway with uvicorn on a free port in this process, posts one signed
CloudEvent (a release) to it over HTTP, applies one schedule (site re-inventory), triggers it, waits
for both pipeline runs to finish (granting the release's production approval as the demo's operator),
stops the gateway, and returns the workflow ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow

from definitions.schedules import ScheduleEntry, ScheduleSet
from definitions.triggers import parse_gateway_config
from triggers.app import create_app
from triggers.auth import sign
from triggers.schedules import apply_plan, plan_apply
from triggers.temporal import TemporalConnection

KEY_ENV = "APEIRO_DEMO_HOOK_KEY"
DEMO_APPROVER = "platform-lead"
#: The promotion the release-promotion pipeline runs (its metadata.name; edge-site's is the same).
PROMOTION = "edge-app"
SCHEDULE_ID = "demo-site-reinventory"

#: Approves what a promotion waits on: (client, promotion, version, approver) -> gates approved. The
#: caller passes the operator's command (`apeiro promote approve`'s workers.cli.promote.approve_waiting):
#: triggers do not import the CLI.
Approve = Callable[[Client, str, str, str], Awaitable[list[str]]]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class TriggerDemo:
    webhook_workflow_id: str
    schedule_id: str
    schedule_workflow_id: str
    gateway_url: str
    webhook_answer: dict[str, Any] = field(default_factory=dict)
    webhook_result: Any = None
    schedule_result: Any = None


def demo_gateway_config(release_inputs: dict[str, Any] | None = None) -> Any:
    """The shipped `releases` route; ``release_inputs`` (the local landscape's repository and
    prometheusUrl) are added to the inputs the rule gives release-promotion."""
    extra = release_inputs or {}
    return parse_gateway_config(
        {
            "routes": [
                {
                    "name": "releases",
                    "source": "cloudevents",
                    "auth": {"type": "hmac", "secrets": [f"env:{KEY_ENV}"]},
                    "rules": [
                        {
                            "name": "promote",
                            "when": 'event.type == "dev.apeiro.release.published" && '
                            'event.data.component == "example.apeiro.dev/edge-app"',
                            "target": {
                                "pipeline": "release-promotion",
                                "inputs": {
                                    "component": "${{ event.data.component }}",
                                    "version": "${{ event.data.version }}",
                                    "source": "${{ event.source }}",
                                    **extra,
                                },
                            },
                        }
                    ],
                }
            ]
        }
    )


@contextlib.asynccontextmanager
async def serve_gateway(client: Client, host: str = "127.0.0.1", release_inputs: dict[str, Any] | None = None) -> Any:
    """Run the gateway with uvicorn inside this event loop; yields its base URL."""
    port = free_port()
    app = create_app(demo_gateway_config(release_inputs), temporal=TemporalConnection(client=client))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


async def show_triggers(
    client: Client,
    landscape_inputs: dict[str, Any],
    *,
    approve: Approve,
    out: Any = print,
    approver: str = DEMO_APPROVER,
) -> TriggerDemo:
    """``landscape_inputs``: the local landscape's pipeline inputs (serverSite, ocmTarget, ocmVersion,
    prometheusUrl), the same ones the demo gives edge-site."""
    os.environ.setdefault(KEY_ENV, secrets.token_hex(16))
    version = str(landscape_inputs.get("ocmVersion", "1.0.0"))
    event = {
        "specversion": "1.0",
        "id": f"release-{int(time.time())}",
        "source": "https://ci.example/edge-app",
        "type": "dev.apeiro.release.published",
        "datacontenttype": "application/json",
        "data": {"component": "example.apeiro.dev/edge-app", "version": version},
    }
    body = json.dumps(event).encode()
    release_inputs = {
        "repository": landscape_inputs.get("ocmTarget"),
        "prometheusUrl": landscape_inputs.get("prometheusUrl"),
    }
    gateway = serve_gateway(client, release_inputs={k: v for k, v in release_inputs.items() if v})
    async with gateway as url, httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(
            f"{url}/hooks/releases",
            content=body,
            headers={
                "content-type": "application/cloudevents+json",
                "x-apeiro-signature": sign(body, os.environ[KEY_ENV]),
            },
        )
        answer = resp.json()
        if resp.status_code != 202:
            raise RuntimeError(f"the gateway refused the demo event: {resp.status_code} {answer}")
        hook_id = answer["workflows"][0]["workflow_id"]
        out(f"webhook: POST {url}/hooks/releases (CloudEvent {event['id']}) -> 202, started {hook_id}")
        out(f"  UI: {answer['workflows'][0]['ui']}")

    entry = ScheduleEntry(
        id=SCHEDULE_ID,
        description="demo: nightly re-inventory",
        pipeline="site-reinventory",
        inputs={"site": landscape_inputs["serverSite"]},
        cron=["30 2 * * *"],
        timezone="Europe/Berlin",
        overlap="skip",
    )
    plan = await plan_apply(client, ScheduleSet(schedules=[entry]), prune=False)
    await apply_plan(client, plan)
    handle = client.get_schedule_handle(SCHEDULE_ID)
    before = len((await handle.describe()).info.recent_actions)
    await handle.trigger()
    sched_id = run_id = ""
    for _ in range(300):
        actions = (await handle.describe()).info.recent_actions
        if len(actions) > before:
            action = actions[-1].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            sched_id, run_id = action.workflow_id, action.first_execution_run_id
            break
        await asyncio.sleep(0.1)
    if not sched_id:
        raise RuntimeError(f"schedule {SCHEDULE_ID} was triggered but started no workflow within 30 s")
    out(f"schedule: applied {SCHEDULE_ID} (cron 30 2 * * * Europe/Berlin), triggered now -> started {sched_id}")
    hook_result = await result_granting_approvals(client, hook_id, version, approver, approve, out)
    sched_result = await client.get_workflow_handle(sched_id, run_id=run_id).result()
    outputs = sched_result.get("outputs", {})
    out(
        f"  webhook run {hook_result.get('state')}: release {version} promoted "
        f"({hook_result.get('outputs', {}).get('state')})"
    )
    out(
        f"  scheduled run {sched_result.get('state')}: re-inventory of {len(outputs.get('servers', []))} servers, "
        f"changed: {outputs.get('changed') or 'none'}"
    )
    return TriggerDemo(
        webhook_workflow_id=hook_id,
        schedule_id=SCHEDULE_ID,
        schedule_workflow_id=sched_id,
        gateway_url=url,
        webhook_answer=answer,
        webhook_result=hook_result,
        schedule_result=sched_result,
    )


async def result_granting_approvals(
    client: Client, workflow_id: str, version: str, approver: str, approve: Approve, out: Any = print
) -> Any:
    """Wait for a release-promotion run; its promotion's production ring waits for a person: the caller
    (the demo, the docs test) is that person."""
    result = asyncio.ensure_future(client.get_workflow_handle(workflow_id).result())
    while not result.done():
        for gate in await approve(client, PROMOTION, version, approver):
            out(f"  → {approver} approved promotion gate {gate}")
        await asyncio.wait([result], timeout=0.5)
    return result.result()
