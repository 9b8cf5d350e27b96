"""The crash campaign, short: pipelines survive a worker killed with SIGKILL, a worker stopped with
SIGTERM (rolling restart) and a Temporal restart; no side effect on the garden API happens twice; and
interrupted work runs again soon. `make chaos` runs the long version.

Recovery bounds here are looser than the targets (kill -9 <= 20 s, SIGTERM <= 3 s, checked by
`make chaos` over many disruptions): CI machines are slow and shared, and one run is one sample.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.chaos.campaign import campaign

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.xdist_group("chaos")]

#: Upper bounds for one CI sample (see the module docstring).
KILL_RECOVERY_S = 30.0
TERM_RECOVERY_S = 6.0
#: A SIGTERM that lands as the server hands the stopping worker a workflow task: the SDK's graceful
#: shutdown does not complete or return that task, so it waits out its start-to-close timeout (10 s,
#: Temporal's default) before another worker gets it (temporalio/sdk-python#783, sticky execution
#: after shutdown). Rare (one CI-sized sample in about four full runs); bounded by that timeout.
WFT_TIMEOUT_RECOVERY_S = 12.0


def check_recovery(records: list, details: str) -> None:
    for rec in records:
        if rec.recovery_s is None:
            continue  # the disruption hit an idle worker or a short call it let finish
        if rec.disruption == "term":
            if "workflow task (" in rec.recovery:  # the stall named above, among the run's stalls
                assert rec.recovery_s <= WFT_TIMEOUT_RECOVERY_S, details
                continue
            assert rec.recovery_s <= TERM_RECOVERY_S, details
        elif rec.disruption == "kill":
            assert rec.recovery_s <= KILL_RECOVERY_S, details


async def test_pipelines_survive_worker_kills_and_server_restart(tmp_path: Path) -> None:
    seed = int(os.environ.get("APEIRO_CHAOS_SEED", random.randrange(1 << 30)))
    report = await campaign(runs=1, restarts=1, terms=1, seed=seed, state=tmp_path, verbose=False)
    details = f"seed={seed}; {report.summary()}; {[r.__dict__ for r in report.records]}"
    assert report.runs == 3 and report.kills == 1 and report.terms == 1 and report.restarts == 1, details
    assert report.completed == report.runs, details
    assert report.duplicates == 0, details
    for rec in report.records:
        assert rec.creates == 1, details  # each shoot created exactly once, despite kills and restarts
        assert rec.generation == report.baseline_generation, details
        assert not rec.error, details  # e.g. a worker that did not exit cleanly after SIGTERM
    check_recovery(report.records, details)


async def test_ocm_transport_survives_worker_kills_without_duplicate_uploads(tmp_path: Path) -> None:
    from tests.chaos.ocm import docker_registry_available, ocm_campaign

    if not docker_registry_available():
        pytest.skip("Debian package docker-registry is not installed (see debian-packages.txt)")
    seed = int(os.environ.get("APEIRO_CHAOS_SEED", random.randrange(1 << 30)))
    report = await ocm_campaign(runs=1, terms=1, seed=seed, state=tmp_path, big_blob=20 << 20, verbose=False)
    details = f"seed={seed}; {report.summary()}; {[r.__dict__ for r in report.records]}"
    assert report.kills == 1 and report.terms == 1 and report.completed == report.runs == 2, details
    assert report.baseline_blobs > 0, details  # the proxy really saw the uploads
    assert report.duplicates == 0, details
    check_recovery(report.records, details)


async def test_server_provisioning_survives_a_worker_kill_without_duplicate_bmc_actions(tmp_path: Path) -> None:
    """Discovery and provisioning against the Redfish emulator with a worker killed mid-run: the run
    completes, and no power action, media insert or eject, or PATCH happens more often than in a
    clean run (counted by the proxy in front of the BMC)."""
    from tests.chaos.server import server_campaign

    seed = int(os.environ.get("APEIRO_CHAOS_SEED", random.randrange(1 << 30)))
    report = await server_campaign(runs=1, seed=seed, state=tmp_path, verbose=False, systems=1)
    details = f"seed={seed}; {report.summary()}; {[r.__dict__ for r in report.records]}"
    assert report.kills == 1 and report.completed == report.runs == 1, details
    assert report.allowed["power"] > 0 and report.allowed["insert"] > 0, details  # the proxy saw the actions
    assert report.duplicates == 0, details
    check_recovery(report.records, details)
