"""Saved histories replay against the current workflow code (catches non-determinism before users do).

Refresh them with `python -m tests.histories.record` after a deliberate, compatible change; guard
incompatible changes to running workflows with `workflow.patched()`. The `promotion-*` histories were
recorded from the promotion workflow tests (time-skipping server) before `workflows/promotion` became
a package; they keep the ring state machine and the coordinator replaying as they did.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workers.config import data_converter
from workers.worker import workflow_runner
from workflows.fanout import FanOutWorkflow
from workflows.pipeline import PipelineWorkflow
from workflows.promotion import WORKFLOWS as PROMOTION_WORKFLOWS

HISTORIES = sorted((Path(__file__).resolve().parents[1] / "histories").glob("*.json"))

pytestmark = pytest.mark.workflow


def test_histories_exist() -> None:
    assert {p.stem for p in HISTORIES} >= {"dag-approval-wait", "fan-out-children", "fan-out-chunk", "failure",
                                           "continue-as-new", "promotion-rings", "promotion-coordinator"}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replays_without_nondeterminism(path: Path) -> None:
    replayer = Replayer(workflows=[PipelineWorkflow, FanOutWorkflow, *PROMOTION_WORKFLOWS],
                        data_converter=data_converter(), workflow_runner=workflow_runner())
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
    assert len(history.events) > 3
