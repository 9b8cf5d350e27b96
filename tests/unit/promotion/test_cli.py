"""`apeiro promote`: validation before start and the status table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from definitions.promotion import GateOutcome
from definitions.promotion_runs import GateStatus, PromotionStatus, RingAttempt, RingState, RunState
from tests.unit.promotion.samples import BASE
from workers.cli import main
from workers.cli.promote import format_status


def test_validate_reports_bad_promql_with_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["spec"]["rings"][1]["verifyGates"][0]["query"] = "rate(x[1m]"
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(data))
    assert main(["promote", "validate", str(f)]) == 1
    assert "spec.rings[1].verifyGates[0].query: unparsable PromQL" in capsys.readouterr().out
    f.write_text(yaml.safe_dump(BASE))
    assert main(["promote", "validate", str(f)]) == 0
    assert "dev -> canary -> production" in capsys.readouterr().out


def test_start_refuses_invalid_definition_before_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["spec"]["rings"][2]["upstream"] = ["staging"]
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(data))
    assert main(["promote", "start", str(f), "1.0.0"]) == 1
    assert "unknown upstream ring 'staging'" in capsys.readouterr().out


def test_status_table_says_why_pending() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    st = PromotionStatus(pipeline="edge-app", version="1.2.0", sequence=3, state=RunState.RUNNING,
                         waiting_approvals=["production/approval"], rings=[
                             RingAttempt(ring="dev", attempt=1, version="1.2.0", sequence=3, state=RingState.VERIFIED,
                                         gates=[GateStatus(name="soak", type="soak", phase="verify", state="Done",
                                                           outcome=GateOutcome.PASSED, reason="soaked 10m")]),
                             RingAttempt(ring="production", attempt=1, version="1.2.0", sequence=3,
                                         state=RingState.ENTRY_GATES,
                                         gates=[GateStatus(name="approval", type="approval", phase="entry",
                                                           state="Waiting", reason="waiting for approval (1 needed)",
                                                           next_check=now)])])
    text = format_status(st)
    assert "edge-app 1.2.0 (#3)" in text
    assert "✔ soak (verify)" in text and "Passed" in text
    assert "waiting for approval (1 needed)" in text
    assert "apeiro promote approve edge-app 1.2.0 GATE" in text
