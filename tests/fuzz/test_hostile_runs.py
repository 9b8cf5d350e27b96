"""Property (issue 17): whatever a definition and its inputs hold (extreme numbers and durations, large
outputs, recursion through sub-pipelines, costly CEL), every run closes within a bounded time,
succeeded or failed with a message, and no history of it (continue-as-new runs and children
included) holds a WorkflowTaskFailed event.

Definitions validation accepts run as `apeiro run` starts them; the ones it refuses run raw, as
JSON typed into the Temporal UI would, and must fail the run at once. Examples are drawn with
hypothesis (the `ci` profile draws a short sample in `make test`, `long` many in `make fuzz`) and run
one after another on one time-skipping server and worker.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from definitions import queues
from definitions.catalog import load_catalog
from definitions.library import PipelineLibrary
from definitions.runs import PipelineRequest
from definitions.validate import DefinitionError, validate_definition
from landscape.temporal import time_skipping_server_path
from tests.fuzz.strategies import LIBRARY, hostile_run
from tests.workflow.limits.support import assert_no_task_failures, blob, register_blob_step
from workers.config import data_converter
from workers.worker import build_workers

pytestmark = [pytest.mark.fuzz, pytest.mark.workflow, pytest.mark.xdist_group("time-skipping")]

#: Wall-clock bound on one run (time skipping makes waits instant; sub-pipelines nest up to 10 deep).
RUN_SECONDS = 90
#: Runs per profile: a few in `make test`, many in `make fuzz`.
RUNS = max(8, settings().max_examples // 8)


def draw_runs(n: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    drawn: list[tuple[dict[str, Any], dict[str, Any]]] = []

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(hostile_run())
    def collect(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
        drawn.append(run)

    collect()
    return drawn[:n]


def write_library(directory: Path) -> None:
    for name, spec in LIBRARY.items():
        (directory / f"{name}.yaml").write_text(
            json.dumps(
                {"apiVersion": "apeiro.dev/v1alpha1", "kind": "Pipeline", "metadata": {"name": name}, "spec": spec}
            )
        )


async def run_all(runs: list[tuple[dict[str, Any], dict[str, Any]]], graph: dict[str, set[str]]) -> list[str]:
    problems: list[str] = []
    catalog = load_catalog()
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(), test_server_existing_path=str(time_skipping_server_path())
    )
    try:
        workers = build_workers(env.client, [queues.PIPELINE], extra_activities={queues.PIPELINE: [blob]})
        async with workers[0]:
            for definition, inputs in runs:
                try:
                    _, resolved = validate_definition(definition, catalog, inputs=inputs, known_pipelines=graph)
                    request: Any = PipelineRequest(definition=definition, inputs=resolved, continue_as_new_after=100)
                except DefinitionError:
                    request = {"definition": definition, "inputs": inputs}  # raw, as from the Temporal UI
                try:
                    handle = await env.client.start_workflow(
                        "PipelineWorkflow", request, task_queue=queues.PIPELINE, id=f"hostile-{uuid.uuid4().hex[:10]}"
                    )
                except Exception as exc:  # the client refuses to encode it (e.g. NaN): nothing started
                    if isinstance(request, PipelineRequest):
                        problems.append(f"validated run could not start ({exc}): {definition} {inputs}")
                    continue
                try:
                    await asyncio.wait_for(handle.result(), RUN_SECONDS)
                except WorkflowFailureError as exc:
                    if not str(exc.cause):
                        problems.append(f"failed without a message: {definition} {inputs}")
                except TimeoutError:
                    problems.append(f"did not close within {RUN_SECONDS} s: {definition} {inputs}")
                    await handle.terminate("hostile fuzz: still running")
                try:
                    await assert_no_task_failures(env.client, handle.id)
                except AssertionError as exc:
                    problems.append(f"{exc}\n  definition: {definition}\n  inputs: {inputs}")
    finally:
        await env.shutdown()
    return problems


def test_hostile_runs_close_with_a_message_and_never_fail_a_workflow_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_library(tmp_path)
    monkeypatch.setenv("APEIRO_DEFINITIONS", str(tmp_path))
    register_blob_step()
    runs = draw_runs(RUNS)
    assert len(runs) >= min(RUNS, 8)
    problems = asyncio.run(run_all(runs, PipelineLibrary([tmp_path]).call_graph()))
    assert not problems, "\n".join(problems[:5])
