"""`apeiro dev up / status / env / down` as processes: the landscape and its workers start, serve a
pipeline, and stop cleanly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from landscape.landscape import all_pids, read_state
from landscape.process import pid_alive
from tests.integration.conftest import REPO, apeiro
from tests.support import pipeline

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dev-up")]


def test_dev_up_run_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env |= {"APEIRO_STATE_DIR": str(state), "PYTHONPATH": str(REPO)}
    up = apeiro(["dev", "up", "--queues", "pipeline"], env, timeout=180)
    try:
        assert up.returncode == 0, up.stderr
        assert "landscape up" in up.stdout and "workers" in up.stdout
        recorded = read_state(state)
        assert recorded is not None
        pids = all_pids(recorded)
        assert pids and all(pid_alive(p) for p in pids)

        again = apeiro(["dev", "up"], env)
        assert again.returncode == 1 and "already running" in again.stderr

        status = apeiro(["dev", "status"], env)
        assert status.returncode == 0 and "temporal" in status.stdout and "DOWN" not in status.stdout
        exports = apeiro(["dev", "env"], env).stdout
        assert "export TEMPORAL_ADDRESS=127.0.0.1:" in exports

        flow = tmp_path / "hello.yaml"
        flow.write_text(json.dumps(pipeline([{"name": "hello", "uses": "core.echo",
                                              "with": {"values": {"msg": "hi"}}}],
                                            name="hello", outputs={"msg": "steps.hello.outputs.msg"})))
        # No TEMPORAL_ADDRESS: the CLI finds the landscape through APEIRO_STATE_DIR.
        run = apeiro(["run", str(flow), "--wait"], env)
        assert run.returncode == 0, run.stderr
        assert 'outputs: {"msg": "hi"}' in run.stdout
    finally:
        down = apeiro(["dev", "down"], env)
    assert down.returncode == 0 and "stopped:" in down.stdout
    assert not any(pid_alive(p) for p in pids)
    assert read_state(state) is None
