"""The cluster step types inside the pipeline engine: the example pipeline validates and runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.client import Client

import definitions.cluster  # noqa: F401  (registers the cluster step types; the catalog does it after merge)
from definitions import queues
from definitions.catalog import load_catalog
from definitions.runs import PipelineRequest, PipelineResult, RunState
from definitions.validate import validate_definition
from landscape.kubeapi.part import KubeApiServer
from workers.worker import build_workers

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("cluster")]

EXAMPLE = Path(__file__).resolve().parents[3] / "definitions" / "examples" / "cluster-lifecycle.yaml"


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


def read_shoot(api: KubeApiServer, name: str) -> dict[str, Any]:
    url = f"{api.url}/apis/core.gardener.cloud/v1beta1/namespaces/garden-edge/shoots/{name}"
    data: dict[str, Any] = httpx.get(url).json()
    return data


def test_example_validates() -> None:
    pipeline, resolved = validate_definition(example(), load_catalog(), inputs={"site": "edge-x"})
    assert [s.uses for s in pipeline.spec.steps] == ["cluster.create", "cluster.upgrade"]
    assert resolved["upgradeTo"] == "1.31.4"


@pytest.fixture
async def engine_workers(
    dev_client: Client, garden_api: KubeApiServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    monkeypatch.setenv("APEIRO_GARDEN_KUBECONFIG", garden_api.endpoints["kubeconfig"])
    workers = build_workers(dev_client, [queues.PIPELINE, queues.GARDENER])
    for w in workers:
        await w.__aenter__()
    try:
        yield
    finally:
        for w in reversed(workers):
            await w.__aexit__(None, None, None)


async def test_example_runs_create_then_upgrade(
    dev_client: Client, engine_workers: None, garden_api: KubeApiServer
) -> None:
    site = f"site-{uuid.uuid4().hex[:6]}"
    data = example()
    _, resolved = validate_definition(data, load_catalog(), inputs={"site": site})
    result = await dev_client.execute_workflow(
        "PipelineWorkflow",
        PipelineRequest(definition=data, inputs=resolved, requested_by="test"),
        id=f"pipeline-{site}",
        task_queue=queues.PIPELINE,
        result_type=PipelineResult,
    )
    assert result.state is RunState.SUCCEEDED, result
    assert [(s.name, s.state.value) for s in result.steps] == [
        ("create_cluster", "succeeded"),
        ("upgrade_cluster", "succeeded"),
    ]
    shoot = read_shoot(garden_api, site)
    assert shoot["spec"]["kubernetes"]["version"] == "1.31.4"
    assert shoot["spec"]["provider"]["workers"][0]["machine"]["image"]["version"] == "1877.3.0"
