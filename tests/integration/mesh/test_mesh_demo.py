"""`apeiro mesh demo`: a PipelineRun ordered through a binding reaches Succeeded (real dev server, real kcp process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def test_mesh_demo_orders_a_run_that_succeeds(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("APEIRO_DEFINITIONS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "workers.cli", "mesh", "demo", "--state-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=REPO,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-2000:]
    assert "phase AwaitingApproval" in out and "phase Succeeded" in out
    assert "approve=succeeded apply=succeeded" in out
    assert "conditions: Ready=True, Succeeded=True, AwaitingApproval=False" in out
    assert "StepWaiting" in out and "landscape stopped." in out
