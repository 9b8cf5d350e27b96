"""The fault campaign, short: random API faults and cut watches during full pipelines; the run with
an unfixable quota error fails with a non-retryable message naming it, the others finish; none hangs."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.chaos.faults import fault_campaign

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.xdist_group("chaos")]


async def test_pipelines_under_random_faults_finish_or_fail_right(tmp_path: Path) -> None:
    seed = int(os.environ.get("APEIRO_CHAOS_SEED", random.randrange(1 << 30)))
    report = await fault_campaign(
        runs=2, seed=seed, state=tmp_path, deadline=150, verbose=False, quota_plan=[False, True]
    )
    details = f"seed={seed}; {report.summary()}; {[r.__dict__ for r in report.records]}"
    assert report.hung == 0 and report.wrong == 0, details
    assert report.succeeded == 1 and report.failed_as_expected == 1, details
    assert report.faults_injected >= 3, details
    failed = report.records[1]
    assert "ERR_INFRA_QUOTA_EXCEEDED" in failed.message, details


async def test_transports_under_registry_faults_finish_or_fail_right(tmp_path: Path) -> None:
    from tests.chaos.faults import ocm_fault_campaign
    from tests.chaos.ocm import docker_registry_available

    if not docker_registry_available():
        pytest.skip("Debian package docker-registry is not installed (see debian-packages.txt)")
    seed = int(os.environ.get("APEIRO_CHAOS_SEED", random.randrange(1 << 30)))
    report = await ocm_fault_campaign(
        runs=2, seed=seed, state=tmp_path, deadline=150, verbose=False, fatal_plan=[False, True]
    )
    details = f"seed={seed}; {report.summary()}; {[r.__dict__ for r in report.records]}"
    assert report.hung == 0 and report.wrong == 0, details
    assert report.succeeded == 1 and report.failed_as_expected == 1, details
    assert report.faults_injected >= 1, details
    assert "BadCredentials" in report.records[1].message, details
