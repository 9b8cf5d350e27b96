import uuid
import pytest
from temporalio.worker import Worker
from workers.worker import build_workers
from definitions.runs import PipelineRequest

pytestmark = pytest.mark.workflow

DEF = {
    "apiVersion": "apeiro.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": "smoke"},
    "spec": {
        "inputs": {"n": {"type": "integer", "default": 3}},
        "steps": [
            {"name": "a", "uses": "core.echo", "with": {"values": {"x": "${{ inputs.n * 2 }}"}}},
            {"name": "b", "uses": "core.echo", "needs": ["a"], "forEach": "[1,2,3]", "with": {"values": {"i": "${{ item + steps.a.outputs.x }}"}}},
            {"name": "w", "uses": "core.wait", "with": {"duration": "1h"}},
        ],
        "outputs": {"sum": "steps.b.outputs.map(o, o.i)"},
    },
}

async def test_smoke(ts_env):
    client = ts_env.client
    workers = build_workers(client, ["pipeline"])
    async with workers[0]:
        r = await client.execute_workflow("PipelineWorkflow", PipelineRequest(definition=DEF), id=f"smoke-{uuid.uuid4()}", task_queue="pipeline")
    print(r)
    assert r["outputs"]["sum"] == [7, 8, 9]
