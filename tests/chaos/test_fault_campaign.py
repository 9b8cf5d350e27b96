"""The fault campaign, short: random API faults and cut watches during full pipelines; the run with
an unfixable quota error fails with a non-retryable message naming it, the others finish; none hangs."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.chaos.common import FaultReport
from tests.chaos.faults import fault_campaign

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.xdist_group("chaos")]


def check_one_recovered_one_failed(report: FaultReport, seed: int, min_faults: int, failure: str) -> None:
    """Two runs: the first finished despite its transient faults, the second failed as it must, with
    ``failure`` in its message; none hung or ended wrong, and at least ``min_faults`` faults fired."""
    details = f"seed={seed}; {report.summary()}; {[r.__dict__ for r in report.records]}"
    assert report.hung == 0 and report.wrong == 0, details
    assert report.succeeded == 1 and report.failed_as_expected == 1, details
    assert report.faults_injected >= min_faults, details
    assert failure in report.records[1].message, details


async def test_pipelines_under_random_faults_finish_or_fail_right(tmp_path: Path) -> None:
    seed = int(os.environ.get("APEIRO_CHAOS_SEED", random.randrange(1 << 30)))
    report = await fault_campaign(
        runs=2, seed=seed, state=tmp_path, deadline=150, verbose=False, quota_plan=[False, True]
    )
    check_one_recovered_one_failed(report, seed, min_faults=3, failure="ERR_INFRA_QUOTA_EXCEEDED")


async def test_transports_under_registry_faults_finish_or_fail_right(tmp_path: Path) -> None:
    from tests.chaos.faults import ocm_fault_campaign
    from tests.chaos.ocm import docker_registry_available

    if not docker_registry_available():
        pytest.skip("Debian package docker-registry is not installed (see debian-packages.txt)")
    seed = int(os.environ.get("APEIRO_CHAOS_SEED", random.randrange(1 << 30)))
    report = await ocm_fault_campaign(
        runs=2, seed=seed, state=tmp_path, deadline=150, verbose=False, fatal_plan=[False, True]
    )
    check_one_recovered_one_failed(report, seed, min_faults=1, failure="BadCredentials")


async def test_promotion_gate_with_prometheus_down_errors_then_recovers(tmp_path: Path) -> None:
    """Prometheus stopped while the metric gate runs: Error (not Failed), no rollback, and the
    promotion succeeds once Prometheus is back."""
    from landscape.process import LandscapeError, find_executable
    from tests.chaos.prometheus_down import prometheus_down_campaign

    try:
        find_executable("prometheus")
    except LandscapeError:
        pytest.skip("Debian package prometheus is not installed (see debian-packages.txt)")
    seed = int(os.environ.get("APEIRO_CHAOS_SEED", random.randrange(1 << 30)))
    report = await prometheus_down_campaign(runs=1, seed=seed, state=tmp_path, deadline=120, verbose=False)
    details = f"seed={seed}; {report.summary()}; {[r.__dict__ for r in report.records]}"
    assert report.hung == 0 and report.wrong == 0 and report.recovered == 1, details
    assert report.gate_error_seen == 1 and report.gate_failed == 0 and report.rolled_back == 0, details
    assert report.records[0].deploys == 1, details
