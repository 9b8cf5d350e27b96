"""What the crash and fault campaigns (and the scale bench) share: `apeiro worker` processes started
and stopped the way operators run them, one disrupted run's timing, the report tallies and their
summary lines, and the cluster the cluster pipelines create.

Kept small on purpose: a campaign composes these; it does not subclass a framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# --- worker processes ------------------------------------------------------------------------------


def start_worker(env: dict[str, str], queues: str, log: Path) -> subprocess.Popen[bytes]:
    """One `apeiro worker --queues QUEUES` process, its output in ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker", "--queues", queues],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_workers(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    """SIGTERM (a graceful worker shutdown) to all, then SIGKILL whatever is still running."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


# --- one disrupted run -----------------------------------------------------------------------------


@dataclass
class RunEnd:
    """How a run under a disruption ended. ``missed``: it ended before the disruption was due, so
    nothing was disrupted and the run does not count."""

    completed: bool
    result: Any
    error: str
    seconds: float
    missed: bool


async def disrupted_run(
    result: Callable[[], Awaitable[Any]],
    disrupt: Callable[[], Awaitable[None]] | None,
    at: float,
    error_chars: int | None = None,
    started: float | None = None,
) -> RunEnd:
    """Await ``result()`` while ``disrupt()`` fires ``at`` seconds in (no disruption when None). A run
    completed when its result is a pipeline that succeeded; a failure is recorded, not raised.
    ``started`` (``time.monotonic()`` before the run was started) is where ``seconds`` count from."""
    t0 = time.monotonic() if started is None else started
    fired = asyncio.Event()

    async def fire() -> None:
        if disrupt is not None:
            await asyncio.sleep(at)
            fired.set()
            await disrupt()

    task = asyncio.create_task(fire())
    completed, error, value = False, "", None
    try:
        value = await result()
        completed = isinstance(value, dict) and value.get("state") == "succeeded"
        if not completed:
            error = f"pipeline ended {value.get('state') if isinstance(value, dict) else value!r}"
    except Exception as exc:  # a campaign records failures instead of stopping at the first
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - t0
    missed = disrupt is not None and not fired.is_set()
    if missed:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return RunEnd(completed, value, error[:error_chars] if error_chars else error, seconds, missed)


# --- reports -----------------------------------------------------------------------------------------


def emit(record: Any, verbose: bool, prefix: str = "") -> None:
    """One JSON line per run record (the campaigns' progress output)."""
    if verbose:
        print(prefix + json.dumps(asdict(record)), flush=True)


@dataclass
class CrashRun:
    """One run of a crash campaign: the disruption (``none``, ``kill``, ``restart``, or ``... (after the
    end: not done)``), when it fired, and what the run did."""

    disruption: str
    at_seconds: float
    completed: bool
    seconds: float
    duplicates: int = 0
    error: str = ""
    #: Activities that needed a second attempt (the disruption hit work in flight).
    retried: int = 0


@dataclass
class CrashTally:
    """A crash campaign's counts. ``interrupted``: runs with an activity that needed a second attempt
    (the disruption really hit work in flight); ``missed``: runs that ended before it was due."""

    runs: int = 0
    kills: int = 0
    completed: int = 0
    duplicates: int = 0
    interrupted: int = 0
    missed: int = 0
    baseline_seconds: float = 0.0
    records: list[Any] = field(default_factory=list)

    def count(self, record: Any) -> None:
        """Count a run whose disruption happened (``completed``, ``duplicates``, ``retried`` fields)."""
        self.runs += 1
        self.completed += int(record.completed)
        self.duplicates += record.duplicates
        self.interrupted += int(record.retried > 0)
        self.records.append(record)

    def tally_line(self, name: str, disruptions: str, after: str = "disruption") -> str:
        return (
            f"{name}: runs={self.runs} {disruptions} completed={self.completed} duplicates={self.duplicates} "
            f"runs-with-retried-activities={self.interrupted} "
            f"(+{self.missed} runs that ended before their {after} was due)"
        )


@dataclass
class FaultRun:
    site: str
    faults: list[str]
    outcome: str  # succeeded | failed-as-expected | wrong-outcome | hung
    seconds: float
    message: str = ""
    #: Faulty answers the proxy actually gave (registry runs; a fault timed after the end never fires).
    served: int = -1


@dataclass
class FaultReport:
    runs: int = 0
    faults_injected: int = 0
    succeeded: int = 0
    failed_as_expected: int = 0
    wrong: int = 0
    hung: int = 0
    records: list[FaultRun] = field(default_factory=list)

    def count(self, record: FaultRun, faults: int) -> None:
        self.runs += 1
        self.faults_injected += faults
        self.succeeded += record.outcome == "succeeded"
        self.failed_as_expected += record.outcome == "failed-as-expected"
        self.wrong += record.outcome == "wrong-outcome"
        self.hung += record.outcome == "hung"
        self.records.append(record)

    def summary(self) -> str:
        return (
            f"fault campaign: runs={self.runs} faults={self.faults_injected} succeeded={self.succeeded} "
            f"failed-as-expected={self.failed_as_expected} wrong-outcome={self.wrong} hung={self.hung}"
        )


# --- the cluster the cluster pipelines create --------------------------------------------------------


def shoot_cluster(name: str, pool: dict[str, Any] | None = None) -> dict[str, Any]:
    """``cluster.create``'s cluster on the landscape's local provider (``name`` may be an expression)."""
    return {
        "name": name,
        "project_namespace": "garden-edge",
        "cloud_profile": "local",
        "region": "local",
        "credentials_binding": "local-credentials",
        "provider_type": "local",
        "kubernetes_version": "1.30.8",
        "workers": [pool or {"name": "pool1", "machine_type": "local-small", "image_version": "1592.9.0"}],
    }
