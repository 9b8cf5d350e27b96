"""`make demo` end to end, as a process: the edge-site pipeline against the whole local landscape, beside
it a cluster upgrade over a fleet in two waves with gates between them, then one workflow started by a
webhook (a release, promoted ring by ring) and one by a schedule (a site re-inventory). It must exit 0
and say what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("demo")]

ROOT = Path(__file__).resolve().parents[3]


def test_make_demo_runs_the_edge_site_and_both_triggers(tmp_path: Path) -> None:
    if not Path("/usr/bin/docker-registry").exists():
        pytest.skip("Debian package docker-registry is not installed (see debian-packages.txt)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("APEIRO_DEFINITIONS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "workers.cli", "demo", "--state-dir", str(tmp_path / "demo")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "promoted: Succeeded" in out
    assert "registered: 4" in out and "clusterVersion: 1.31.4" in out
    assert "redfish   4 provisioned through their BMC" in out
    assert "ironcore  2 claimed from metal-operator" in out
    assert "-> 202, started releases-" in out
    assert "approved promotion gate production/approval" in out
    assert "webhook run succeeded: release 1.0.0 promoted (Succeeded)" in out
    assert "scheduled run succeeded: re-inventory of 4 servers" in out
    # the fleet: a canary wave of one shoot, a soak and a Prometheus gate, then the other two
    assert "⇉ fleet: wave 1: gate soak (soak) · soak: soaking 2s until" in out
    assert "=== fleet: cluster upgrade in two waves" in out and "state: done  waves: 2  targets: 3" in out
    assert "before wave 1  ✔ error-rate (prometheus)  Passed" in out
    assert all(f"✔ fleet-{x}  succeeded" in out for x in "abc")
    assert "landscape stopped." in out
