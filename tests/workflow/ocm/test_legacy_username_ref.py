"""A transport started before ``username`` existed carries ``username_ref: apeiro`` (a literal) in
its recorded input. That history must still decode and replay: the literal moves into ``username``
with a warning. (Before start the same literal is refused: tests/unit/test_username_field.py.)"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workers.config import data_converter
from workers.worker import workflow_runner
from workflows.transport import ComponentTransportWorkflow

pytestmark = pytest.mark.workflow

HISTORY = Path(__file__).resolve().parent / "histories" / "transport-sequential.json"


def _with_literal_username_ref() -> str:
    history = json.loads(HISTORY.read_text())
    payload = history["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    inp = json.loads(base64.b64decode(payload["data"]))
    inp["target"]["username_ref"] = "apeiro"
    payload["data"] = base64.b64encode(json.dumps(inp).encode()).decode()
    return json.dumps(history)


async def test_a_history_with_a_literal_username_ref_still_replays() -> None:
    history = WorkflowHistory.from_json("legacy-username-ref", _with_literal_username_ref())
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0].data
    assert b'"username_ref": "apeiro"' in started  # the old form really is in the input
    replay = await Replayer(
        debug_mode=True,
        workflows=[ComponentTransportWorkflow],
        data_converter=data_converter(),
        workflow_runner=workflow_runner(),
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None, replay.replay_failure
