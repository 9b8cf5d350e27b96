"""Konfidence activities against the landscape: the Stage controller and a real Prometheus, and a whole
promotion on the time-skipping server with the real activities (soaks skip; Stages and metrics are real)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities import konfidence
from activities.freeze import ACTIVITIES as FREEZE_ACTIVITIES
from definitions import queues
from definitions.promotion import Target
from definitions.promotion_runs import (
    PromotionOutcome,
    PromotionRequest,
    PromQuery,
    RingState,
    RunState,
    StageDeploy,
)
from landscape.kubeapi.part import KubeApiServer
from landscape.prometheus import Prometheus
from tests.server_fixtures import shared_testdata
from tests.unit.promotion.samples import two_rings
from workers.worker import workflow_runner
from workflows.promotion import WORKFLOWS

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("promotion-ts")]


def target(api: KubeApiServer, name: str) -> Target:
    return Target(stage=name, kubeconfig=api.endpoints["kubeconfig"])


def vector(version: str) -> dict[str, Any]:
    return {"component": "example.apeiro.dev/edge-app", "version": version, "repository": "http://r"}


def stage(api: KubeApiServer, name: str) -> dict[str, Any]:
    resp = httpx.get(f"{api.url}/apis/konfidence.cloud/v1alpha1/namespaces/default/stages/{name}", timeout=5)
    resp.raise_for_status()
    result: dict[str, Any] = resp.json()
    return result


def ref(version: str) -> str:
    return f"http://r//example.apeiro.dev/edge-app:{version}"


async def test_deploy_stage_writes_the_reference_and_reads_konfidence_status(stage_api: KubeApiServer) -> None:
    env = ActivityEnvironment()
    name = f"s-{uuid.uuid4().hex[:6]}"
    first = await env.run(konfidence.deploy_stage, StageDeploy(target=target(stage_api, name), vector=vector("1.0.0")))
    assert first.changed and first.previous_vector is None and first.vector["reference"] == ref("1.0.0")
    second = await env.run(konfidence.deploy_stage, StageDeploy(target=target(stage_api, name), vector=vector("1.1.0")))
    assert second.previous_vector == {**vector("1.0.0"), "reference": ref("1.0.0")}
    again = await env.run(konfidence.deploy_stage, StageDeploy(target=target(stage_api, name), vector=vector("1.1.0")))
    assert not again.changed  # idempotent: no second patch
    obj = stage(stage_api, name)
    assert obj["spec"]["vector"] == ref("1.1.0")
    assert obj["status"]["vectorHistory"] == [ref("1.0.0"), ref("1.1.0")]
    conditions = {c["type"]: (c["status"], c["observedGeneration"]) for c in obj["status"]["conditions"]}
    assert conditions == {t: ("True", 2) for t in ("VectorDeploymentCreated", "VectorDeployed", "VectorMigrated",
                                                   "Ready")}
    assert obj["status"]["latestVectorDeploymentRef"]["kind"] == "VectorDeployment"


async def test_rollback_repoints_to_the_verified_reference(stage_api: KubeApiServer) -> None:
    """A version verified from another repository is re-pointed exactly, not rebuilt from the artifact."""
    env = ActivityEnvironment()
    name = f"s-{uuid.uuid4().hex[:6]}"
    mirror = "mirror.example/ocm//example.apeiro.dev/edge-app:1.0.0"
    await env.run(konfidence.deploy_stage, StageDeploy(target=target(stage_api, name), vector=mirror))
    await env.run(konfidence.deploy_stage, StageDeploy(target=target(stage_api, name), vector=vector("2.0.0")))
    back = await env.run(konfidence.deploy_stage, StageDeploy(target=target(stage_api, name), vector=vector("1.0.0")))
    assert back.vector["reference"] == mirror and stage(stage_api, name)["spec"]["vector"] == mirror


async def test_stage_that_never_gets_ready_is_reported(stage_api: KubeApiServer, stage_faults: str) -> None:
    name = f"s-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.post(stage_faults, json={"fault": "never-ready", "stage": f"default/{name}"})
        resp.raise_for_status()
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(konfidence.deploy_stage, StageDeploy(
            target=target(stage_api, name), vector=vector("2.0.0"), ready_timeout_seconds=1.5))
    assert err.value.type == "StageNotReady" and err.value.non_retryable
    assert "ActivationFailed" in str(err.value)


async def test_failed_deployment_is_not_retried(stage_api: KubeApiServer, stage_faults: str) -> None:
    name = f"s-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(timeout=5) as client:
        (await client.post(stage_faults, json={"fault": "deploy-failed", "stage": f"default/{name}"})).raise_for_status()
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(konfidence.deploy_stage, StageDeploy(
            target=target(stage_api, name), vector=vector("2.0.0"), ready_timeout_seconds=10))
    assert err.value.type == "StageDeployFailed" and err.value.non_retryable
    assert "ArtifactDeploymentFailed" in str(err.value)


async def test_missing_stage_crd_names_the_landscape(bare_api: KubeApiServer) -> None:
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(konfidence.deploy_stage, StageDeploy(
            target=target(bare_api, "s"), vector=vector("1.0.0")))
    assert err.value.type == "StageCrdMissing" and err.value.non_retryable
    assert bare_api.url in str(err.value) and "404" in str(err.value)


@pytest.mark.parametrize("bad", ["example.apeiro.dev/edge-app:1.0.0", "http://r//Edge App:1", "http://r//x.io/a"])
async def test_reference_that_does_not_parse_is_refused(stage_api: KubeApiServer, bad: str) -> None:
    name = f"s-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(konfidence.deploy_stage, StageDeploy(target=target(stage_api, name),
                                                                             vector=bad))
    assert err.value.type == "StageReferenceInvalid" and err.value.non_retryable
    assert bad in str(err.value)
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.get(f"{stage_api.url}/apis/konfidence.cloud/v1alpha1/namespaces/default/stages/{name}")
    assert resp.status_code == 404  # nothing was written


def test_stage_api_serves_the_upstream_crds_when_available(stage_api: KubeApiServer) -> None:
    crd = httpx.get(f"{stage_api.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/stages.konfidence.cloud",
                    timeout=5).json()
    upstream = shared_testdata() / "crds" / "konfidence"
    if not upstream.is_dir():
        pytest.skip("no ../shared/testdata/crds/konfidence here")
    assert crd["metadata"]["annotations"]["controller-gen.kubebuilder.io/version"]  # the upstream file, not ours


async def test_unknown_landscape_is_a_config_error() -> None:
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(konfidence.deploy_stage, StageDeploy(
            target=Target(stage="x", landscape="far-away"), vector=vector("1")))
    assert "APEIRO_LANDSCAPE_FAR_AWAY_KUBECONFIG" in str(err.value)


async def test_prometheus_query_real_and_unreachable(prometheus: Prometheus) -> None:
    env = ActivityEnvironment()
    prometheus.set_error_rate(0.2)
    for _ in range(100):
        res = await env.run(konfidence.prometheus_query, PromQuery(address=prometheus.endpoints["url"],
                                                                   query="max(sample_error_ratio)"))
        if res.ok and res.value == 0.2:
            break
        await asyncio.sleep(0.2)
    assert res.ok and res.value == 0.2
    bad = await env.run(konfidence.prometheus_query, PromQuery(address=prometheus.endpoints["url"],
                                                               query="rate(x[1m]"))
    assert not bad.ok and "bad_data" in bad.error
    down = await env.run(konfidence.prometheus_query, PromQuery(address="http://127.0.0.1:9", query="up"))
    assert not down.ok and "ConnectError" in down.error
    prometheus.set_error_rate(0.0)


async def test_promotion_end_to_end_with_real_stages_and_prometheus(
        ts_env: WorkflowEnvironment, stage_api: KubeApiServer, prometheus: Prometheus, tmp_path: Path) -> None:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    data = two_rings(name, stage_api.endpoints["kubeconfig"], prometheus.endpoints["url"], str(tmp_path / "flags.json"),
                     "5m", "10s")
    worker = Worker(ts_env.client, task_queue=queues.KONFIDENCE, workflows=WORKFLOWS,
                    activities=[*konfidence.ACTIVITIES, *FREEZE_ACTIVITIES], workflow_runner=workflow_runner())
    ids = []

    async def promote(version: str) -> PromotionOutcome:
        wid = f"promotion-{name}-{version}"
        ids.append(wid)
        handle = await ts_env.client.start_workflow(
            "PromotionWorkflow", PromotionRequest(promotion=data, version=version, requested_by="ci"),
            id=wid, task_queue=queues.KONFIDENCE)
        return PromotionOutcome.model_validate(await handle.result())

    async with worker:
        try:
            prometheus.set_error_rate(0.0)
            await asyncio.sleep(2.5)  # two scrapes
            good = await promote("1.0.0")
            assert good.status.state is RunState.SUCCEEDED, good.status.message
            assert stage(stage_api, f"{name}-c1")["spec"]["vector"] == ref("1.0.0")
            prometheus.set_error_rate(0.5)
            await asyncio.sleep(2.5)
            bad = await promote("2.0.0")
            assert bad.status.state is RunState.FAILED
            canary = bad.audit[-1]
            assert canary.state is RingState.ROLLED_BACK and canary.rollback_to == "1.0.0"
            for i in range(2):
                obj = stage(stage_api, f"{name}-c{i}")
                assert obj["spec"]["vector"] == ref("1.0.0")
                assert obj["status"]["vectorHistory"] == [ref("1.0.0"), ref("2.0.0"), ref("1.0.0")]
            flags = json.loads((tmp_path / "flags.json").read_text())
            assert flags["flags"]["new-ui"]["metadata"]["apeiroVersion"] == "1.0.0"  # reverted
        finally:
            prometheus.set_error_rate(0.0)
            for wid in [*ids, f"promotion-coordinator-{name}"]:
                try:
                    await ts_env.client.get_workflow_handle(wid).terminate("test finished")
                except Exception:
                    pass


async def test_rollout_through_konfidence_vector_promotions(stage_api: KubeApiServer) -> None:
    """Per target, the ring works through Konfidence's records: a VectorPromotion per vector, approved."""
    env = ActivityEnvironment()
    name = f"s-{uuid.uuid4().hex[:6]}"
    config = f"cfg-{name}"
    await env.run(konfidence.deploy_stage, StageDeploy(target=target(stage_api, name), vector=vector("1.0.0")))
    via = Target(stage=name, kubeconfig=stage_api.endpoints["kubeconfig"], vector_promotion_config=config)
    res = await env.run(konfidence.deploy_stage, StageDeploy(target=via, vector=vector("1.1.0"), approved_by="alice"))
    assert res.changed and res.vector["reference"] == ref("1.1.0") and res.previous_vector is not None
    again = await env.run(konfidence.deploy_stage, StageDeploy(target=via, vector=vector("1.1.0"), approved_by="alice"))
    assert not again.changed
    await env.run(konfidence.deploy_stage, StageDeploy(target=via, vector=vector("1.2.0")))
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.get(f"{stage_api.url}/apis/konfidence.cloud/v1alpha1/namespaces/default/vectorpromotions")
    mine = sorted((p for p in resp.json()["items"] if p["spec"]["vectorPromotionConfigName"] == config),
                  key=lambda p: p["spec"]["sequence"])
    assert [(p["spec"]["sequence"], p["spec"]["vector"], p["status"]["state"]) for p in mine] == [
        (1, ref("1.1.0"), "Succeeded"), (2, ref("1.2.0"), "Succeeded")]
    assert mine[0]["spec"]["requireApproval"] and mine[0]["status"]["approval"]["approvedBy"] == "alice"
    assert not mine[1]["spec"]["requireApproval"]
    assert stage(stage_api, name)["spec"]["vector"] == ref("1.2.0")


async def test_vector_promotion_to_a_missing_stage_is_refused(stage_api: KubeApiServer) -> None:
    via = Target(stage=f"none-{uuid.uuid4().hex[:6]}", kubeconfig=stage_api.endpoints["kubeconfig"],
                 vector_promotion_config="cfg")
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(konfidence.deploy_stage, StageDeploy(target=via, vector=vector("1.0.0")))
    assert err.value.type == "StageDeployFailed" and "does not exist" in str(err.value)
