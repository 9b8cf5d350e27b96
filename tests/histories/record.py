"""Record the saved histories the replay test replays: ``python -m tests.histories.record``.

One command, from real runs on a fresh dev server next to the local landscape parts the integration
tests use. Each scenario starts its workflows with an id prefix; afterwards every workflow whose id
has that prefix (children and continued runs too) is saved as
``tests/histories/<WorkflowType>/<scenario>-<case>.json`` (per type, the largest run of each
workflow id, at most ``PER_TYPE`` ids per scenario). Runs still open when a scenario ends (a pending approval) are
saved as they are: replaying an open history is what a worker does after a deploy.

Files of earlier recordings with other names are left alone: histories recorded before a change
stay until its patch is deprecated (docs/architecture.md, "Changing a workflow").

``--only pipeline,server`` records some scenarios; ``--list`` names them. Takes about two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
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


async def record_server_groups(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """Discovery of six emulated BMCs (one system each), three BMCs per ``redfish.discover_bmcs``."""
    from definitions.server import DiscoverInput
    from landscape.redfish import RedfishEmulator
    from tests.server_fixtures import BMC_PASSWORD, PASSWORD_ENV, redfish_worker, site

    os.environ[PASSWORD_ENV] = BMC_PASSWORD
    emu = RedfishEmulator(6, username="admin", password=BMC_PASSWORD, seed="replay-groups", bmc_per_system=True)
    queue = f"{prefix}redfish"
    with Landscape([emu], state_dir=state / "groups").running():
        inp = DiscoverInput(site=site("replay-groups", *emu.bmc_urls), concurrency=2, bmcs_per_activity=3)
        async with redfish_worker(client, queue, state / "groups-store"):
            await client.execute_workflow("ServerDiscoveryWorkflow", inp, id=f"{prefix}discover", task_queue=queue)


async def record_server_fleet(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """A firmware wave over three emulated servers (one BMC each), one already in sync."""
    import httpx

    from activities.freeze import ACTIVITIES as FREEZE
    from definitions.rollout import RolloutInput, RolloutResult
    from definitions.server import DiscoverInput
    from landscape.redfish import ImageServer, RedfishEmulator
    from tests.server_fixtures import BMC_PASSWORD, PASSWORD_ENV, redfish_worker, site
    from workflows.rollout import FleetRolloutWorkflow

    os.environ[PASSWORD_ENV] = BMC_PASSWORD
    emu = RedfishEmulator(
        3, username="admin", password=BMC_PASSWORD, seed="replay-fleet", firmware_seconds=0.3, bmc_per_system=True
    )
    queue, rollout_queue = f"{prefix}redfish", f"{prefix}rollout"
    with Landscape([emu, ImageServer(size_mib=1)], state_dir=state / "fleet").running() as land:
        base = land.part("images").endpoints["base"]
        uri = f"{base}/bios-2.0.0.bin"
        pre = await asyncio.to_thread(
            httpx.post,
            f"{emu.bmc_urls[0]}/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            json={"ImageURI": uri},
            auth=("admin", BMC_PASSWORD),
        )
        pre.raise_for_status()
        definition = site("replay-fleet", *emu.bmc_urls)
        async with (
            redfish_worker(client, queue, state / "fleet-store"),
            sandboxed_worker(client, rollout_queue, [FleetRolloutWorkflow], FREEZE),
        ):
            await client.execute_workflow(
                "ServerDiscoveryWorkflow", DiscoverInput(site=definition), id=f"{prefix}discover", task_queue=queue
            )
            await asyncio.sleep(1.0)  # the pre-updated server's task finishes
            inp = RolloutInput.model_validate(
                {
                    "operation": "server.firmware",
                    "with": {"firmware": [{"image_uri": uri, "component": "BIOS", "version": "2.0.0"}]},
                    "site": definition.model_dump(),
                    "serverQueue": queue,
                    "rollout": {"selector": {"kind": "server"}, "waves": [1, "100%"], "maxInFlight": 2},
                }
            )
            await client.execute_workflow(
                "FleetRolloutWorkflow", inp, id=f"{prefix}rollout", task_queue=rollout_queue, result_type=RolloutResult
            )


@contextlib.asynccontextmanager
async def gardener_worker(client: Client, prefix: str, state: Path) -> AsyncIterator[tuple[str, Any]]:
    """The garden API server with the simulated gardenlet (seeded) and a `gardener` worker on its own
    queue; yields (queue, api)."""

    from landscape.gardener import samples
    from landscape.kubeapi.part import KubeApiServer
    from workers.gardener import contents

    api = KubeApiServer(settings={"gardener.speed": "3000"}, bookmark_interval=0.5)
    api.start(state)
    try:
        samples.seed(api.url)
        queue, c = f"{prefix}gardener", contents()
        async with sandboxed_worker(client, queue, c.workflows, c.activities):
            yield queue, api
    finally:
        api.stop()


async def record_clusters(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """Create, maintain (upgrades inside the window), upgrade two minors, delete, against the garden
    API server with the simulated gardenlet."""
    from definitions.cluster import ClusterCreateInput, ClusterDeleteInput, ClusterMaintainInput, ClusterUpgradeInput
    from tests.integration.cluster.test_cluster_workflows import NS, garden, spec

    async with gardener_worker(client, prefix, state / "garden") as (queue, api):
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


async def record_rollout(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """A fleet rollout (hibernate two shoots): a canary, the promotion's gates between the waves (soak,
    httpProbe, approval granted by an update), then the rest."""
    from definitions.cluster import ClusterCreateInput
    from definitions.rollout import RolloutInput, RolloutStatus, WaveApproval
    from tests.integration.cluster.test_cluster_workflows import NS, garden, spec

    async with gardener_worker(client, prefix, state / "garden-rollout") as (queue, api):
        ref = garden(api)
        for name in ("replay-r1", "replay-r2"):
            await client.execute_workflow(
                "ClusterCreateWorkflow",
                ClusterCreateInput(cluster=spec(name, labels={"fleet": "replay"}), garden=ref),
                id=f"{prefix}create-{name}",
                task_queue=queue,
            )
        gates = [
            {"type": "soak", "duration": "1s"},
            {"type": "httpProbe", "url": f"{api.url}/healthz", "interval": "1s"},
            {"type": "approval", "approvers": ["ops"]},
        ]
        rollout = {"selector": {"namespace": NS, "matchLabels": {"fleet": "replay"}}, "gates": gates}
        inp = RolloutInput.model_validate(
            {
                "operation": "cluster.hibernate",
                "with": {"enabled": True},
                "rollout": rollout,
                "garden": ref.model_dump(),
            }
        )
        handle = await client.start_workflow("FleetRolloutWorkflow", inp, id=f"{prefix}rollout", task_queue=queue)
        for _ in range(600):
            if (await handle.query("status", result_type=RolloutStatus)).waiting_approvals:
                break
            await asyncio.sleep(0.1)
        await handle.execute_update("approve_wave", WaveApproval(wave=1, approver="ops", comment="replay"))
        await handle.result()


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
    """Promotions against the Stage controller and a real Prometheus: one that succeeds, one that
    continues as new while its metric gate checks, one rolled back by its error-rate gate, one
    superseded by a newer version, one saved mid-soak, and the coordinator after those versions."""

    from activities import konfidence
    from activities.freeze import ACTIVITIES as FREEZE_ACTIVITIES
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
        async with sandboxed_worker(client, queues.KONFIDENCE, WORKFLOWS, [*konfidence.ACTIVITIES, *FREEZE_ACTIVITIES]):
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
            # A promotion whose metric gate checks often enough to continue as new (twice) mid-verification.
            long = request("1.6.0", "1s")
            spec = json.loads(json.dumps(long.promotion.model_dump(mode="json", by_alias=True)))
            spec["spec"]["rings"][1]["verifyGates"][0]["count"] = 12
            await client.execute_workflow(
                "PromotionWorkflow",
                PromotionRequest(promotion=spec, version="1.6.0", requested_by="recorder", continue_as_new_after=50),
                id=f"{prefix}continued",
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


async def record_fleet(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """The landscape-wide freeze (started, exempted, ended, asked for again: saved open), credential
    rotation in both phases, hibernation and wake-up, and a fleet rollout in two waves behind a soak
    and an approval, against the garden API server with the simulated gardenlet."""

    from activities.freeze import ACTIVITIES as FREEZE_ACTIVITIES
    from definitions.cluster import ClusterCreateInput
    from definitions.cluster_day2 import HibernationInput, RotateCredentialsInput
    from definitions.freeze import FREEZE_WORKFLOW_ID, Exemption, FreezeEnd, FreezeRequest
    from definitions.rollout import RolloutInput, RolloutStatus, WaveApproval
    from landscape.gardener import samples
    from landscape.kubeapi.part import KubeApiServer
    from tests.integration.cluster.test_cluster_workflows import NS, garden, spec
    from workers.gardener import contents
    from workflows.freeze import FreezeWorkflow

    api = KubeApiServer(settings={"gardener.speed": "3000"}, bookmark_interval=0.5)
    api.start(state / "fleet-garden")
    try:
        samples.seed(api.url)
        queue, c = f"{prefix}gardener", contents()
        async with (
            sandboxed_worker(client, queue, c.workflows, c.activities),
            sandboxed_worker(client, queues.PIPELINE, [FreezeWorkflow], FREEZE_ACTIVITIES),
        ):
            freeze = await client.start_workflow(
                "FreezeWorkflow", None, id=FREEZE_WORKFLOW_ID, task_queue=queues.PIPELINE
            )
            await freeze.execute_update("start_freeze", FreezeRequest(by="recorder", reason="replay history"))
            await freeze.execute_update(
                "exempt", Exemption(subject="promotion-x-1.0.0", approver="lead", reason="hotfix")
            )
            await freeze.execute_update("end_freeze", FreezeEnd(by="recorder", reason="done"))
            await freeze.signal("freeze", FreezeRequest(by="alertmanager", reason="alert fired"))
            await freeze.execute_update("end_freeze", FreezeEnd(by="recorder", reason="resolved"))
            ref = garden(api)
            names = ["fleet-a", "fleet-b"]
            for name in names:
                await client.execute_workflow(
                    "ClusterCreateWorkflow",
                    ClusterCreateInput(cluster=spec(name, labels={"fleet": "rec"}), garden=ref),
                    id=f"{prefix}create-{name}",
                    task_queue=queue,
                )
            await client.execute_workflow(
                "ClusterRotateCredentialsWorkflow",
                RotateCredentialsInput(name=names[0], project_namespace=NS, garden=ref),
                id=f"{prefix}rotate",
                task_queue=queue,
            )
            for enabled in (True, False):
                await client.execute_workflow(
                    "ClusterHibernationWorkflow",
                    HibernationInput(name=names[0], project_namespace=NS, garden=ref, enabled=enabled),
                    id=f"{prefix}{'hibernate' if enabled else 'wake'}",
                    task_queue=queue,
                )
            rollout = await client.start_workflow(
                "FleetRolloutWorkflow",
                RolloutInput.model_validate(
                    {
                        "operation": "cluster.hibernate",
                        "with": {"enabled": True},
                        "rollout": {
                            "selector": {"namespace": NS, "matchLabels": {"fleet": "rec"}},
                            "waves": [1, "100%"],
                            "maxInFlight": 2,
                            "gates": [{"type": "soak", "duration": "1s"}, {"type": "approval", "approvers": ["bob"]}],
                        },
                        "garden": ref.model_dump(),
                    }
                ),
                id=f"{prefix}rollout",
                task_queue=queue,
            )
            async with asyncio.timeout(60):
                while True:
                    st = await rollout.query("status", result_type=RolloutStatus)
                    if len(st.waves) > 1 and st.waves[1].state == "gate" and "approval" in st.waves[1].gate:
                        break
                    await asyncio.sleep(0.2)
            await rollout.execute_update("approve_wave", WaveApproval(wave=1, approver="bob"))
            await rollout.result()
    finally:
        api.stop()


async def record_ctf(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """The example component exported to a CTF archive (directory and tar) and imported into a second
    registry (as tests/integration/ocm/test_ctf.py, without signatures)."""

    from activities.ocm.ctf_export import ACTIVITIES as EXPORT
    from activities.ocm.ctf_import import ACTIVITIES as IMPORT
    from definitions.ocm import ComponentVersionRef, RepositorySpec
    from definitions.ocm_ctf import CtfExportInput, CtfFormat, CtfImportInput
    from landscape import ocm_example as ex
    from landscape.registry import RegistryPart
    from workflows.ctf import CtfExportWorkflow, CtfImportWorkflow

    source, site = RegistryPart("ctf-source"), RegistryPart("ctf-site", tls=True, username="apeiro")
    source.start(state / "ctf-source")
    site.start(state / "ctf-site")
    os.environ["APEIRO_TEST_SITE_PASSWORD"] = site.password or ""
    try:
        await ex.push_example(f"{source.url}/example")
        queue = f"{prefix}ocm"
        async with sandboxed_worker(client, queue, [CtfExportWorkflow, CtfImportWorkflow], [*EXPORT, *IMPORT]):
            for fmt in (CtfFormat.DIRECTORY, CtfFormat.TAR):
                archive = state / ("ctf-archive" if fmt is CtfFormat.DIRECTORY else "ctf-archive.tar")
                await client.execute_workflow(
                    "CtfExportWorkflow",
                    CtfExportInput(
                        source=RepositorySpec(url=f"{source.url}/example"),
                        archive=str(archive),
                        format=fmt,
                        components=[ComponentVersionRef(name=ex.MAIN, version=ex.VERSION)],
                    ),
                    id=f"{prefix}export-{fmt.value}",
                    task_queue=queue,
                )
                await client.execute_workflow(
                    "CtfImportWorkflow",
                    CtfImportInput(
                        archive=str(archive),
                        target=RepositorySpec(
                            url=f"{site.url}/imported-{fmt.value}",
                            username="apeiro",
                            password_ref="env:APEIRO_TEST_SITE_PASSWORD",
                            ca_bundle=site.endpoints["ca_bundle"],
                        ),
                        chunk_size=64 * 1024,
                    ),
                    id=f"{prefix}import-{fmt.value}",
                    task_queue=queue,
                )
    finally:
        site.stop()
        source.stop()


async def record_long_freeze(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """A fleet rollout and a cluster upgrade held by a long freeze: each continues as new at its freeze
    point past a small history bound, then finishes once the freeze ends (record_freeze.py)."""
    from tests.histories.record_freeze import record_long_freeze as scenario

    await scenario(client, prefix, state, temporal)


async def record_long_gates(client: Client, prefix: str, state: Path, temporal: Any) -> None:
    """A fleet rollout whose gate between waves runs long: it continues as new mid-gate past a small
    history bound, the open gate's progress carried, then finishes (record_freeze.py)."""
    from tests.histories.record_freeze import record_long_gates as scenario

    await scenario(client, prefix, state, temporal)


SCENARIOS: dict[str, Scenario] = {
    "pipeline": record_pipelines,
    "server": record_servers,
    "server-fleet": record_server_fleet,
    "server-groups": record_server_groups,
    "cluster": record_clusters,
    "transport": record_transport,
    "promotion": record_promotions,
    "fleet": record_fleet,
    "ctf": record_ctf,
    "rollout": record_rollout,
    "long-freeze": record_long_freeze,
    "long-gates": record_long_gates,
}


def _case(prefix: str, workflow_id: str) -> str:
    """A file-name-safe case name from a workflow id (the scenario's prefix dropped)."""
    tail = workflow_id.removeprefix(prefix)
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in tail).strip("-")[:60] or "run"


async def save(client: Client, scenario: str, prefix: str, since: datetime) -> list[Path]:
    """The workflows started since the scenario began (children with ids of their own too): for
    each type, the largest run of each workflow id, at most PER_TYPE ids per type; of a chain that
    continued as new also its largest continued run (``<case>-continued.json``)."""
    await asyncio.sleep(1.5)  # visibility is eventually consistent
    found: dict[str, dict[str, tuple[int, str]]] = {}
    query = f"StartTime >= '{since.isoformat()}'"
    async for wf in client.list_workflows(query):
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        runs = found.setdefault(wf.workflow_type, {})
        started = history.events[0].workflow_execution_started_event_attributes
        key = f"{wf.id}\0continued" if started.continued_execution_run_id else wf.id
        if key not in runs or runs[key][0] < len(history.events):
            runs[key] = (len(history.events), wf.run_id)
    written = []
    for workflow_type, runs in sorted(found.items()):
        (HERE / workflow_type).mkdir(exist_ok=True)
        largest = sorted(runs.items(), key=lambda kv: -kv[1][0])[:PER_TYPE]
        for key, (_, run_id) in largest:
            wid, _, continued = key.partition("\0")
            history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
            case = _case(prefix, wid) + (f"-{continued}" if continued else "")
            path = HERE / workflow_type / f"{scenario}-{case}.json"
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
