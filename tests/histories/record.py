"""Record the saved histories the replay test replays: ``python -m tests.histories.record``.

One command, from real runs on a fresh dev server next to the local landscape parts the integration
tests use. Each scenario starts its workflows with an id prefix; afterwards every workflow whose id
has that prefix (children and continued runs too) is saved as
``tests/histories/<WorkflowType>/<scenario>-<case>.json`` (per type, the largest run of each
workflow id, at most ``PER_TYPE`` ids per scenario). Runs still open when a scenario ends (a pending approval) are
saved as they are: replaying an open history is what a worker does after a deploy.

Files of earlier recordings with other names are left alone: histories recorded before a change
stay until its patch is deprecated (docs/architecture.md, "Changing a workflow").

``--only pipeline,server`` records some scenarios; ``--list`` names them. Takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from definitions import queues
from definitions.runs import ApprovalDecision, PipelineRequest, PipelineStatus, StepState
from landscape.landscape import Landscape
from landscape.temporal import TemporalDevServer
from tests.support import pipeline, sandboxed_worker
from tests.unit.promotion.samples import two_rings
from workers.config import data_converter
from workers.worker import build_workers

HERE = Path(__file__).resolve().parent
PER_TYPE = 8

Scenario = Callable[[Client, str, Path, Any], Awaitable[None]]


def _pipelines() -> dict[str, dict[str, Any]]:
    return {
        "dag-approval": pipeline(
            [
                {"name": "plan", "uses": "core.echo", "with": {"values": {"hosts": ["a", "b", "c"]}}},
                {
                    "name": "each",
                    "uses": "core.echo",
                    "needs": ["plan"],
                    "forEach": "steps.plan.outputs.hosts",
                    "maxParallel": 2,
                    "with": {"values": {"h": "${{ item }}"}},
                },
                {"name": "gate", "uses": "core.approval", "needs": ["each"], "with": {"approvers": ["ops"]}},
                {"name": "pause", "uses": "core.wait", "needs": ["gate"], "with": {"duration": "1s"}},
            ],
            name="replay-dag",
            outputs={"n": "size(steps.each.outputs)"},
        ),
        "fan-out": pipeline(
            [
                {
                    "name": "fan",
                    "uses": "core.echo",
                    "forEach": "inputs.items",
                    "maxParallel": 30,
                    "with": {"values": {"i": "${{ item }}"}},
                },
            ],
            name="replay-fanout",
            inputs={"items": {"type": "array", "default": list(range(60))}},
        ),
        "failure": pipeline(
            [
                {"name": "bad", "uses": "core.wait", "with": {"duration": "${{ inputs.d }}"}},
                {"name": "after", "uses": "core.echo", "needs": ["bad"]},
            ],
            name="replay-failure",
            inputs={"d": {"type": "string", "default": "never"}},
        ),
        "continue-as-new": pipeline(
            [{"name": f"s{i}", "uses": "core.echo", **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(20)],
            name="replay-can",
        ),
        "sub-pipeline": pipeline(
            [
                {"name": "sub", "uses": "core.pipeline", "with": {"pipeline": "replay-sub", "inputs": {"n": 2}}},
            ],
            name="replay-parent",
        ),
    }


SUB_PIPELINE = pipeline(
    [{"name": "double", "uses": "core.echo", "with": {"values": {"n": "${{ inputs.n * 2 }}"}}}],
    name="replay-sub",
    inputs={"n": {"type": "integer"}},
)


async def _wait_for_gate(handle: Any, step: str) -> None:
    async with asyncio.timeout(60):
        while True:
            try:
                st = await handle.query("status", result_type=PipelineStatus)
            except RPCError:  # the worker is busy with the other scenarios' first tasks
                await asyncio.sleep(0.5)
                continue
            rec = next((s for s in st.steps if s.name == step), None)
            if rec is not None and rec.state is StepState.WAITING and rec.message:
                return
            await asyncio.sleep(0.1)


async def record_pipelines(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """Fan-out (and its chunks), continue-as-new, a failure, a sub-pipeline, an approval both
    pending (saved open) and decided."""
    defs = state / "definitions"
    defs.mkdir(exist_ok=True)
    (defs / "replay-sub.yaml").write_text(json.dumps(SUB_PIPELINE))
    os.environ["APEIRO_DEFINITIONS"] = str(defs)
    async with build_workers(client, [queues.PIPELINE])[0]:
        handles = []
        for name, definition in _pipelines().items():
            extra = {"continue_as_new_after": 100} if name == "continue-as-new" else {}
            handles.append(
                (
                    name,
                    await client.start_workflow(
                        "PipelineWorkflow",
                        PipelineRequest(definition=definition, **extra),
                        id=f"{prefix}{name}",
                        task_queue=queues.PIPELINE,
                    ),
                )
            )
        pending = await client.start_workflow(
            "PipelineWorkflow",
            PipelineRequest(definition=_pipelines()["dag-approval"]),
            id=f"{prefix}approval-pending",
            task_queue=queues.PIPELINE,
        )
        await _wait_for_gate(pending, "gate")
        for name, handle in handles:
            if name == "dag-approval":
                await _wait_for_gate(handle, "gate")
                await handle.execute_update("approve", ApprovalDecision(step="gate", approver="ops"))
            try:
                await handle.result()
            except WorkflowFailureError:
                pass


async def record_servers(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """Discovery of an emulated site (list and inventory batches) and provisioning of its servers."""
    from definitions.server import SiteDefinition
    from landscape.redfish import RedfishEmulator, fake_systems, server_parts
    from tests.server_fixtures import BMC_PASSWORD, PASSWORD_ENV, discover_and_provision, redfish_worker

    os.environ[PASSWORD_ENV] = BMC_PASSWORD
    parts = server_parts(temporal, systems=2)
    emu = parts[1]
    assert isinstance(emu, RedfishEmulator)
    emu.seed, emu.boot_seconds = "replay", 0.5
    emu.systems = fake_systems(2, emu.seed)
    queue = f"{prefix}redfish"
    land = Landscape(parts, state_dir=state / "edge")
    with land.running():
        images = land.part("images").endpoints
        site = SiteDefinition.model_validate(emu.site_definition("replay-site"))
        async with redfish_worker(client, queue, state / "store"):
            await discover_and_provision(client, queue, site, images, (f"{prefix}discover", f"{prefix}fleet"))


async def record_clusters(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """Create, maintain (upgrades inside the window), upgrade two minors, delete, against the garden
    API server with the simulated gardenlet."""

    from definitions.cluster import ClusterCreateInput, ClusterDeleteInput, ClusterMaintainInput, ClusterUpgradeInput
    from landscape.gardener import samples
    from landscape.kubeapi.part import KubeApiServer
    from tests.integration.cluster.test_cluster_workflows import NS, garden, spec
    from workers.gardener import contents

    api = KubeApiServer(settings={"gardener.speed": "3000"}, bookmark_interval=0.5)
    api.start(state / "garden")
    try:
        samples.seed(api.url)
        queue, c = f"{prefix}gardener", contents()
        async with sandboxed_worker(client, queue, c.workflows, c.activities):
            name, ref = "replay-a", garden(api)
            await client.execute_workflow(
                "ClusterCreateWorkflow",
                ClusterCreateInput(cluster=spec(name, version="1.29.10"), garden=ref),
                id=f"{prefix}create",
                task_queue=queue,
            )
            await client.execute_workflow(
                "ClusterMaintainWorkflow",
                ClusterMaintainInput(project_namespace=NS, names=[name], garden=ref),
                id=f"{prefix}maintain",
                task_queue=queue,
            )
            await client.execute_workflow(
                "ClusterUpgradeWorkflow",
                ClusterUpgradeInput(name=name, project_namespace=NS, garden=ref, target_version="1.31.4"),
                id=f"{prefix}upgrade",
                task_queue=queue,
            )
            await client.execute_workflow(
                "ClusterDeleteWorkflow",
                ClusterDeleteInput(name=name, project_namespace=NS, garden=ref),
                id=f"{prefix}delete",
                task_queue=queue,
            )
    finally:
        api.stop()


async def record_transport(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """A component transport whose worker is killed mid-blob; the next attempt resumes the upload
    (as tests/integration/ocm/test_resume.py)."""
    import signal

    from activities.ocm.transport import ACTIVITIES
    from definitions.ocm import ComponentVersionRef, RepositorySpec, TransportInput
    from landscape import ocm_example as ex
    from landscape.registry import RegistryPart
    from tests.integration.ocm.slow_worker import spawn
    from workflows.transport import ComponentTransportWorkflow

    source, site = RegistryPart("source"), RegistryPart("site", tls=True, username="apeiro")
    source.start(state / "source")
    site.start(state / "site")
    os.environ["APEIRO_TEST_SITE_PASSWORD"] = site.password or ""
    try:
        await ex.push_example(f"{source.url}/big", big_blob=3 * 1024 * 1024)
        inp = TransportInput(
            source=RepositorySpec(url=f"{source.url}/big"),
            target=RepositorySpec(
                url=f"{site.url}/replay",
                username_ref="apeiro",
                password_ref="env:APEIRO_TEST_SITE_PASSWORD",
                ca_bundle=site.endpoints["ca_bundle"],
            ),
            components=[ComponentVersionRef(name=ex.MAIN, version=ex.VERSION)],
            recursive=False,
            chunk_size=64 * 1024,
            heartbeat_timeout_s=3,
            parallel_blobs=1,
        )
        queue = f"{prefix}ocm"
        proc = spawn(temporal.endpoints["address"], queue, 0.3)  # a worker process to SIGKILL mid-blob
        try:
            assert proc.stdout is not None
            handle = await client.start_workflow(
                "ComponentTransportWorkflow", inp, id=f"{prefix}resumed-blob", task_queue=queue
            )
            while True:
                line = await asyncio.to_thread(proc.stdout.readline)
                if not line or (line.startswith(b"chunk ") and int(line.split()[1]) >= 512 * 1024):
                    break
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        async with sandboxed_worker(client, queue, [ComponentTransportWorkflow], ACTIVITIES):
            await handle.result()
    finally:
        site.stop()
        source.stop()


async def record_promotions(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """Promotions against the Stage controller and a real Prometheus: one that succeeds, one rolled
    back by its error-rate gate, one superseded by a newer version, one saved mid-soak, and the
    coordinator after those versions."""

    from activities import konfidence
    from definitions.promotion import PromotionPipeline, PromotionRunArgs
    from definitions.promotion_runs import PromotionRequest
    from landscape.kubeapi.part import KubeApiServer
    from landscape.prometheus import Prometheus
    from workflows.promotion import WORKFLOWS

    api = KubeApiServer(
        plugins=("landscape.kubeapi.extra_kinds", "landscape.konfidence"),
        settings={"konfidence.deploySeconds": "0.1"},
        seed_garden=False,
    )
    api.start(state / "stage-api")
    prom = Prometheus(scrape_interval="1s")
    prom.start(state / "prometheus")
    name = "replay"
    kube = api.endpoints["kubeconfig"]
    data = two_rings(name, kube, prom.endpoints["url"], str(state / "flags.json"), "${{ soak }}", "1s")

    def request(version: str, soak: str) -> PromotionRequest:
        spec = json.loads(json.dumps(data).replace("${{ soak }}", soak))
        return PromotionRequest(promotion=spec, version=version, requested_by="recorder")

    try:
        async with sandboxed_worker(client, queues.KONFIDENCE, WORKFLOWS, konfidence.ACTIVITIES):
            prom.set_error_rate(0.0)
            await asyncio.sleep(2.5)  # two scrapes
            good = await client.start_workflow(
                "PromotionWorkflow", request("1.0.0", "1s"), id=f"{prefix}succeeded", task_queue=queues.KONFIDENCE
            )
            await good.result()
            # The `promotion.run` pipeline step: the promotion as a child.
            step = request("1.5.0", "1s")
            await client.execute_workflow(
                "PromotionStepWorkflow",
                PromotionRunArgs(promotion=PromotionPipeline.model_validate(step.promotion), version="1.5.0"),
                id=f"{prefix}step",
                task_queue=queues.KONFIDENCE,
            )
            prom.set_error_rate(0.5)
            await asyncio.sleep(2.5)
            bad = await client.start_workflow(
                "PromotionWorkflow", request("2.0.0", "1s"), id=f"{prefix}rolled-back", task_queue=queues.KONFIDENCE
            )
            await bad.result()
            prom.set_error_rate(0.0)
            old = await client.start_workflow(
                "PromotionWorkflow", request("3.0.0", "1h"), id=f"{prefix}superseded", task_queue=queues.KONFIDENCE
            )
            await asyncio.sleep(3)
            await client.start_workflow(
                "PromotionWorkflow", request("4.0.0", "1h"), id=f"{prefix}mid-soak", task_queue=queues.KONFIDENCE
            )
            await old.result()
            await asyncio.sleep(3)  # 4.0.0 soaking in ring dev: saved open
    finally:
        prom.stop()
        api.stop()


SCENARIOS: dict[str, Scenario] = {
    "pipeline": record_pipelines,
    "server": record_servers,
    "cluster": record_clusters,
    "transport": record_transport,
    "promotion": record_promotions,
}


def _case(prefix: str, workflow_id: str) -> str:
    """A file-name-safe case name from a workflow id (the scenario's prefix dropped)."""
    tail = workflow_id.removeprefix(prefix)
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in tail).strip("-")[:60] or "run"


async def save(client: Client, scenario: str, prefix: str, since: datetime) -> list[Path]:
    """The workflows started since the scenario began (children with ids of their own too): for
    each type, the largest run of each workflow id, at most PER_TYPE ids per type."""
    await asyncio.sleep(1.5)  # visibility is eventually consistent
    found: dict[str, dict[str, tuple[int, str]]] = {}
    query = f"StartTime >= '{since.isoformat()}'"
    async for wf in client.list_workflows(query):
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        runs = found.setdefault(wf.workflow_type, {})
        if wf.id not in runs or runs[wf.id][0] < len(history.events):
            runs[wf.id] = (len(history.events), wf.run_id)
    written = []
    for workflow_type, runs in sorted(found.items()):
        (HERE / workflow_type).mkdir(exist_ok=True)
        largest = sorted(runs.items(), key=lambda kv: -kv[1][0])[:PER_TYPE]
        for wid, (_, run_id) in largest:
            history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
            path = HERE / workflow_type / f"{scenario}-{_case(prefix, wid)}.json"
            path.write_text(json.dumps({"workflowId": wid, **json.loads(history.to_json())}, indent=1))
            written.append(path)
            print(f"recorded {path.relative_to(HERE)}: {len(history.events)} events")
    return written


async def main(only: list[str]) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        landscape = Landscape([TemporalDevServer(headless=True)], state_dir=Path(tmp) / "temporal")
        with landscape.running():
            client = await Client.connect(
                landscape.part("temporal").endpoints["address"], data_converter=data_converter()
            )
            for name in only:
                prefix = f"rec-{name}-{uuid.uuid4().hex[:6]}-"
                t0, since = time.monotonic(), datetime.now(UTC)
                await SCENARIOS[name](client, prefix, Path(tmp), landscape.part("temporal"))
                await save(client, name, prefix, since)
                print(f"scenario {name}: {time.monotonic() - t0:.1f}s")
    print(f"recorded {', '.join(only)} in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.histories.record", description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--list", action="store_true", help="name the scenarios and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(f"{k}: {(v.__doc__ or '').splitlines()[0]}" for k, v in SCENARIOS.items()))
    else:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
        asyncio.run(main(names))
