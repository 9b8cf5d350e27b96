"""`apeiro worker` whose Temporal server is gone still exits when told to: the SDK retries its polls
forever and would never acknowledge the shutdown, so the process leaves after the grace period plus a
margin (exit 1), or at once on a second signal (128 + the signal), each saying why in its log."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from landscape.temporal import TemporalDevServer
from tests.chaos.common import start_worker
from tests.integration.reliability.conftest import child_env
from workers.shutdown import STOP_MARGIN_S, STUCK_EXIT_CODE

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("reliability")]

GRACE_S = 1.0


@pytest.fixture
def lost_server_workers(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[bytes], Path]]]:
    """Two `apeiro worker` processes polling a dev server that is then stopped."""
    server = TemporalDevServer(headless=True, persistent=False)
    server.start(tmp_path / "temporal")
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        env = child_env(server, APEIRO_SHUTDOWN_GRACE_SECONDS=str(GRACE_S))
        for i in range(2):
            log = tmp_path / f"worker-{i}.log"
            procs.append((start_worker(env, "ocm", log), log))
        deadline = time.monotonic() + 60
        while not all("workers running" in log.read_text() for _, log in procs):
            assert time.monotonic() < deadline, [log.read_text()[-2000:] for _, log in procs]
            assert all(p.poll() is None for p, _ in procs), [log.read_text()[-2000:] for _, log in procs]
            time.sleep(0.2)
    finally:
        server.stop()
    try:
        yield procs
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_worker_exits_after_grace_and_margin_or_on_a_second_signal(
    lost_server_workers: list[tuple[subprocess.Popen[bytes], Path]],
) -> None:
    (patient, patient_log), (hasty, hasty_log) = lost_server_workers
    t0 = time.monotonic()
    patient.send_signal(signal.SIGTERM)
    hasty.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    hasty.send_signal(signal.SIGTERM)
    assert hasty.wait(timeout=10) == 128 + signal.SIGTERM
    assert time.monotonic() - t0 < GRACE_S + STOP_MARGIN_S, "a second signal must not wait out the bound"
    assert "second signal while shutting down" in hasty_log.read_text()
    assert patient.wait(timeout=GRACE_S + STOP_MARGIN_S + 20) == STUCK_EXIT_CODE
    assert time.monotonic() - t0 >= GRACE_S + STOP_MARGIN_S - 0.5, "it waited for the grace period and margin"
    text = patient_log.read_text()
    assert "did not stop within" in text and "Temporal server reachable" in text
    assert "Traceback" not in text
