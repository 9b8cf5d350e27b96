"""Every saved history replays against the current workflow code, and every workflow type has one.

Histories live in ``tests/histories/<WorkflowType>/<case>.json``. ``python -m tests.histories.record``
records them from real runs on a dev server; histories recorded before a change stay until the
change's patch is deprecated (docs/architecture.md, "Changing a workflow"), so this test proves that
runs started on the previous release still replay on this one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import _Definition

from tests.support import register_probe_step
from workers.config import data_converter
from workers.queues import contents_for, known_queues
from workers.worker import workflow_runner

HISTORIES_DIR = Path(__file__).resolve().parents[1] / "histories"
HISTORIES = sorted(HISTORIES_DIR.rglob("*.json"))

pytestmark = pytest.mark.workflow


def registered_workflows() -> dict[str, type]:
    """Every workflow type any worker registers, by type name."""
    out: dict[str, type] = {}
    for queue in known_queues():
        for wf in contents_for(queue).workflows:
            name = _Definition.must_from_class(wf).name
            assert name is not None
            out[name] = wf
    return out


def load_history(path: Path) -> tuple[str, WorkflowHistory]:
    """(workflow type, history) of a saved file; a ValueError naming the file when it is unreadable."""
    rel = path.relative_to(HISTORIES_DIR)
    try:
        data = json.loads(path.read_text())
        workflow_id = data.pop("workflowId")  # the recorder saves it: child ids derive from it
        history = WorkflowHistory.from_json(workflow_id, data)
        first = history.events[0]
        workflow_type = first.workflow_execution_started_event_attributes.workflow_type.name
    except Exception as exc:
        raise ValueError(
            f"saved history {rel} is corrupt ({type(exc).__name__}: {exc}); re-record it with "
            "`python -m tests.histories.record` or delete it"
        ) from None
    if not workflow_type:
        raise ValueError(f"saved history {rel} does not start with WorkflowExecutionStarted; re-record it")
    return workflow_type, history


def saved_types() -> set[str]:
    return {p.parent.name for p in HISTORIES if p.parent != HISTORIES_DIR}


def test_every_registered_workflow_type_has_a_saved_history() -> None:
    missing = sorted(set(registered_workflows()) - saved_types())
    assert missing == [], (
        f"workflow types without a saved history: {missing}; add a scenario to tests/histories/record.py "
        "and record with python -m tests.histories.record --only <scenario>"
    )
    stale = sorted(saved_types() - set(registered_workflows()))
    assert stale == [], f"saved histories of types no worker registers: {stale}; delete them"


def test_histories_exist_for_the_engine() -> None:
    assert {"PipelineWorkflow", "FanOutWorkflow"} <= saved_types()
    assert len(HISTORIES) >= 6


@pytest.mark.parametrize("path", HISTORIES, ids=[str(p.relative_to(HISTORIES_DIR)) for p in HISTORIES])
async def test_replays_without_nondeterminism(path: Path) -> None:
    register_probe_step()  # operator-repair.json (tests/workflow/test_repair.py) uses the test probe step
    workflow_type, history = load_history(path)
    assert path.parent.name == workflow_type, f"{path.name} holds a {workflow_type} history; move it"
    # debug_mode: no 2-second deadlock timer. Replay proves determinism; on a loaded CI machine a GC pause
    # inside one activation once tripped that timer (TMPRL1101) and failed a history that replays fine.
    replayer = Replayer(
        debug_mode=True,
        workflows=list(registered_workflows().values()),
        data_converter=data_converter(),
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.relative_to(HISTORIES_DIR)}: {result.replay_failure}"
    assert len(history.events) > 3


def test_a_corrupt_history_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = (HISTORIES_DIR / "PipelineWorkflow" / "i17-failure.json").read_text()
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "HISTORIES_DIR", tmp_path)
    bad = tmp_path / "PipelineWorkflow" / "truncated.json"
    bad.parent.mkdir()
    bad.write_text(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"saved history PipelineWorkflow/truncated.json is corrupt"):
        load_history(bad)
    bad.write_text('{"workflowId": "x", "events": []}')
    with pytest.raises(ValueError, match=r"truncated\.json is corrupt"):
        load_history(bad)
