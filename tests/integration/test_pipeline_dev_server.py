"""PipelineWorkflow on the real Temporal dev server: parallelism, cancellation, continue-as-new,
a 1,000-item fan-out, search attributes, and the CLI as operators run it."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from definitions import search_attributes as sa
from definitions.library import EXAMPLES
from definitions.runs import ApprovalDecision, PipelineStatus, StepState
from landscape.landscape import Landscape
from tests.integration.conftest import apeiro, cli_env
from tests.support import pipeline
from tests.workflow.conftest import Engine
from workers.cli.pipeline import start_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dev-server")]


async def wait_for(handle: Any, predicate: Any, timeout: float = 30) -> PipelineStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        st = await handle.query("status", result_type=PipelineStatus)
        if predicate(st):
            return st
        assert asyncio.get_running_loop().time() < deadline, f"condition not reached; last status {st}"
        await asyncio.sleep(0.1)


async def test_independent_steps_really_run_in_parallel(dev_engine: Engine) -> None:
    steps = [{"name": f"p{i}", "uses": "test.probe", "with": {"key": f"p{i}", "sleep": 1.5}} for i in range(6)]
    await (await dev_engine.start(pipeline(steps))).result()
    assert dev_engine.probe.max_in_flight == 6


async def test_foreach_respects_max_parallel(dev_engine: Engine) -> None:
    h = await dev_engine.start(pipeline([
        {"name": "each", "uses": "test.probe", "forEach": "['a','b','c','d','e','f','g','h']", "maxParallel": 3,
         "with": {"key": "${{ item }}", "sleep": 0.6}}]))
    await h.result()
    assert dev_engine.probe.max_in_flight == 3
    assert len(dev_engine.probe.calls) == 8


async def test_cancellation_reaches_activities_and_child_pipelines(dev_engine: Engine, dev_client: Client) -> None:
    h = await dev_engine.start(pipeline([
        {"name": "hold", "uses": "test.probe", "with": {"key": "hold", "sleep": 60}},
        {"name": "sub", "uses": "core.pipeline", "with": {"pipeline": "sub-slow"}},
    ]))
    await wait_for(h, lambda st: all(s.state is StepState.RUNNING for s in st.steps) and st.steps[1].child_workflow_ids)
    await asyncio.sleep(0.5)  # let the child start its activity
    await h.cancel()
    with pytest.raises(WorkflowFailureError) as info:
        await h.result()
    assert isinstance(info.value.cause, CancelledError)
    assert dev_engine.probe.cancelled == ["hold"]
    child = dev_client.get_workflow_handle(f"{h.id}/sub")
    for _ in range(50):
        if (await child.describe()).status == WorkflowExecutionStatus.CANCELED:
            break
        await asyncio.sleep(0.1)
    assert (await child.describe()).status == WorkflowExecutionStatus.CANCELED
    st = await h.query("status", result_type=PipelineStatus)
    assert {s.state for s in st.steps} == {StepState.CANCELLED}


async def test_continue_as_new_keeps_status_and_pending_approval(dev_engine: Engine) -> None:
    chain = [{"name": f"s{i}", "uses": "core.echo", "with": {"values": {"i": i}},
              **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(24)]
    chain.append({"name": "gate", "uses": "core.approval", "needs": ["s23"], "with": {"approvers": ["ops"]}})
    chain.append({"name": "final", "uses": "core.echo", "needs": ["gate"],
                  "with": {"values": {"first": "${{ steps.s0.outputs.i }}"}}})
    for i in range(1, 24):
        chain[i]["with"]["values"]["prev"] = f"${{{{ steps.s{i - 1}.outputs.i }}}}"
    h = await dev_engine.start(pipeline(chain, outputs={"first": "steps.final.outputs.first"}),
                               continue_as_new_after=120)
    st = await wait_for(h, lambda st: st.steps[-2].state is StepState.WAITING and "approval" in st.steps[-2].message)
    assert st.generation > 1
    assert all(s.state is StepState.SUCCEEDED for s in st.steps[:24])
    await h.execute_update("approve", ApprovalDecision(step="gate", approver="ops"))
    result = await h.result()
    assert result["outputs"] == {"first": 0}
    final = await h.query("status", result_type=PipelineStatus)
    assert final.steps[-2].votes[0].approver == "ops"
    assert [s.state for s in final.steps] == [StepState.SUCCEEDED] * 26


@pytest.mark.slow
async def test_thousand_item_fan_out_completes(dev_engine: Engine) -> None:
    h = await dev_engine.start(pipeline(
        [{"name": "fan", "uses": "core.echo", "forEach": "inputs.items", "maxParallel": 200,
          "with": {"values": {"n": "${{ item }}"}}}],
        inputs={"items": {"type": "array", "default": list(range(1000))}},
        outputs={"count": "size(steps.fan.outputs)", "sum": "steps.fan.outputs.map(o, o.n).size()"}))
    result = await h.result()
    assert result["outputs"]["count"] == 1000
    st = await h.query("status", result_type=PipelineStatus)
    assert (st.steps[0].items_done, st.steps[0].items_failed) == (1000, 0)
    assert len(st.steps[0].child_workflow_ids) == 10
    history = await h.fetch_history()
    assert len(history.events) < 1000, "the parent's history must not grow with the fan-out"


async def test_steps_carry_search_attributes(dev_engine: Engine, dev_client: Client) -> None:
    data = pipeline([{"name": "sub", "uses": "core.pipeline", "with": {"pipeline": "sub-double", "inputs": {"n": 1}}}],
                    name="sa-test", inputs={"site": {"type": "string", "default": "edge-7"}})
    h = await start_pipeline(dev_client, data, {})
    await h.result()
    child = await dev_client.get_workflow_handle(f"{h.id}/sub").describe()
    attrs = child.typed_search_attributes
    assert attrs.get(sa.PIPELINE) == "sa-test"
    assert attrs.get(sa.STEP) == "sub" and attrs.get(sa.STEP_TYPE) == "core.pipeline"
    assert attrs.get(sa.SITE) == "edge-7"
    parent = await h.describe()
    assert parent.typed_search_attributes.get(sa.SITE) == "edge-7"


def test_cli_run_wait_status_and_approve(dev_landscape: Landscape, worker_process: subprocess.Popen[bytes],
                                         tmp_path: Path) -> None:
    env = cli_env(dev_landscape)
    bad = apeiro(["run", str(EXAMPLES / "invalid" / "02-unknown-need.yaml")], env)
    assert bad.returncode == 1 and "no step named 'discovr'" in bad.stderr

    flow = tmp_path / "gated.yaml"
    flow.write_text(json.dumps(pipeline(
        [{"name": "gate", "uses": "core.approval", "with": {"approvers": ["ops"]}},
         {"name": "done", "uses": "core.echo", "needs": ["gate"], "with": {"values": {"ok": True}}}],
        name="gated")))
    started = apeiro(["run", str(flow), "--id", "cli-gated-1"], env)
    assert started.returncode == 0, started.stderr
    assert "started cli-gated-1" in started.stdout

    for _ in range(100):
        status = apeiro(["status", "cli-gated-1"], env)
        if "waiting for approval" in status.stdout:
            break
    assert "⏸ gate" in status.stdout
    denied = apeiro(["approve", "cli-gated-1", "--step", "gate", "--as", "intruder"], env)
    assert denied.returncode == 1 and "'intruder' may not approve" in denied.stderr
    ok = apeiro(["approve", "cli-gated-1", "--step", "gate", "--as", "ops"], env)
    assert ok.returncode == 0 and "gate: approved (1/1 approvals)" in ok.stdout
    for _ in range(100):
        status = apeiro(["status", "cli-gated-1"], env)
        if "state succeeded" in status.stdout:
            break
    assert "✔ done" in status.stdout


def test_cli_run_wait_follows_to_the_end(dev_landscape: Landscape, worker_process: subprocess.Popen[bytes],
                                          tmp_path: Path) -> None:
    flow = tmp_path / "short.yaml"
    flow.write_text(json.dumps(pipeline(
        [{"name": "one", "uses": "core.echo", "with": {"values": {"n": "${{ inputs.n }}"}}},
         {"name": "two", "uses": "core.wait", "needs": ["one"], "with": {"duration": "1s"}}],
        name="short", inputs={"n": {"type": "integer"}}, outputs={"n": "steps.one.outputs.n"})))
    env = cli_env(dev_landscape)
    done = apeiro(["run", str(flow), "--wait", "--input", "n=5"], env)
    assert done.returncode == 0, done.stderr
    assert "✔ two" in done.stdout and 'outputs: {"n": 5}' in done.stdout
    wrong = apeiro(["run", str(flow), "--input", "n=five"], env)
    assert wrong.returncode == 1 and "inputs.n: must be an integer, got str 'five'" in wrong.stderr
