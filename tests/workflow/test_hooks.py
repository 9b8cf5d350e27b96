"""A step's `cleanup` runs when it fails (before its dependants are cancelled); the pipeline's
`finally` runs once when the run ends; neither changes the run's outcome."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError

from definitions.runs import PipelineResult, StepState
from tests.support import pipeline
from tests.workflow.conftest import Engine

pytestmark = pytest.mark.workflow


async def test_cleanup_runs_on_failure_and_finally_at_the_end(engine: Engine) -> None:
    h = await engine.start(
        pipeline(
            [
                {
                    "name": "provision",
                    "uses": "test.probe",
                    "with": {"key": "prov", "fail_calls": 1},
                    "cleanup": {"uses": "test.probe", "with": {"key": "eject-media"}},
                },
                {"name": "after", "uses": "core.echo", "needs": ["provision"]},
            ],
            **{"finally": {"uses": "test.probe", "with": {"key": "release-claim"}}},
        )
    )
    with pytest.raises(WorkflowFailureError) as exc:
        await h.result()
    assert "provision" in str(exc.value.cause)
    assert engine.probe.calls == {"prov": 1, "eject-media": 1, "release-claim": 1}
    status = await h.query("status")
    by = {s["name"]: s for s in status["steps"]}
    assert by["provision"]["message"] == "cleanup (test.probe) succeeded"
    assert by["after"]["state"] == StepState.CANCELLED.value
    assert by["finally"]["state"] == StepState.SUCCEEDED.value


async def test_a_failing_finally_does_not_fail_a_good_run(engine: Engine) -> None:
    h = await engine.start(
        pipeline(
            [{"name": "a", "uses": "core.echo", "with": {"values": {"x": 1}}}],
            **{"finally": {"uses": "test.probe", "with": {"key": "fin", "fail_calls": 9}}},
        )
    )
    result = PipelineResult.model_validate(await h.result())
    assert result.state.value == "succeeded"
    fin = next(s for s in result.steps if s.name == "finally")
    assert fin.state is StepState.FAILED and "probe failure" in (fin.error or "")


async def test_a_hook_with_an_unknown_step_type_is_recorded_not_a_stuck_task(engine: Engine) -> None:
    h = await engine.start(
        pipeline(
            [
                {
                    "name": "a",
                    "uses": "test.probe",
                    "continueOnError": True,
                    "with": {"key": "a-hook", "fail_calls": 1},
                    "cleanup": {"uses": "no.such.step"},
                }
            ]
        )
    )
    result = PipelineResult.model_validate(await h.result())
    a = next(s for s in result.steps if s.name == "a")
    assert a.message.startswith("cleanup (no.such.step) failed:") and "no.such.step" in a.message
