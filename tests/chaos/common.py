"""What the crash and fault campaigns (and the scale bench) share: `apeiro worker` processes started
and stopped the way operators run them, one disrupted run's timing, the report tallies and their
summary lines, and the cluster the cluster pipelines create.

Kept small on purpose: a campaign composes these; it does not subclass a framework.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.chaos.recovery import RecoveryFigures, busy_worker_pids, recovery_figures, retried_in

if TYPE_CHECKING:
    import random

    from temporalio.client import Client

    from tests.chaos.harness import WorkerPool

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


def keep_workers(pool: WorkerPool, n: int = 2) -> str:
    """After a run: wait for the workers stopping after SIGTERM and start new ones until ``n`` poll
    again. Returns an error when one of them exited non-zero (a SIGTERM must end a worker cleanly)."""
    exit_codes = pool.reap()
    pool.top_up(n)
    return f"a worker stopped with SIGTERM exited {exit_codes}" if any(exit_codes) else ""


async def stop_a_worker(
    client: Client, pool: WorkerPool, rng: random.Random, workflow_id: str, disruption: str, tally: CrashTally
) -> datetime:
    """``kill``: kill -9 one worker, else SIGTERM one (as a rolling restart does), preferring one that
    runs an activity of ``workflow_id`` right now; counted in ``tally``. Returns when it struck (where
    recovery is measured from)."""
    busy = await busy_worker_pids(client, workflow_id)
    struck = datetime.now(UTC)
    if disruption == "kill":
        pool.kill_one(rng, busy)
        tally.kills += 1
    else:
        pool.term_one(rng, busy)
        tally.terms += 1
    return struck


async def run_fields(
    client: Client, pool: WorkerPool, ids: list[str], disruption: str, at: float, end: RunEnd, fired_at: datetime
) -> dict[str, Any]:
    """The fields every crash-run record shares (see `CrashRun`), once the run is over: the workers
    are topped up for the next run (a worker that did not stop cleanly after SIGTERM is the run's
    error when it has none of its own), retried activities and recovery are read from the histories
    of ``ids`` (recovery only when the disruption fired, at ``fired_at``)."""
    error = end.error or keep_workers(pool)
    retried = await retried_in(client, ids) if end.completed else 0
    fired = disruption != "none" and not end.missed
    recovery_s, recovery = await recovery_figures(client, ids, fired_at) if end.completed and fired else (None, "")
    return {
        "disruption": f"{disruption} (after the end: not done)" if end.missed else disruption,
        "at_seconds": round(at, 2),
        "completed": end.completed,
        "seconds": round(end.seconds, 1),
        "error": error,
        "retried": retried,
        "recovery_s": recovery_s,
        "recovery": recovery,
    }


# --- reports -----------------------------------------------------------------------------------------


def emit(record: Any, verbose: bool, prefix: str = "") -> None:
    """One JSON line per run record (the campaigns' progress output)."""
    if verbose:
        print(prefix + json.dumps(asdict(record)), flush=True)


@dataclass(kw_only=True)
class CrashRun:
    """One run of a crash campaign: the disruption (``none``, ``kill``, ``term``, ``restart``, or
    ``... (after the end: not done)``), when it fired, and what the run did. Each campaign's record
    adds what it counts (keyword-only here, so that a subclass can add fields without defaults)."""

    disruption: str
    at_seconds: float
    completed: bool
    seconds: float
    duplicates: int = 0
    error: str = ""
    #: Activities that needed a second attempt (the disruption hit work in flight).
    retried: int = 0
    #: Seconds from the disruption until the interrupted work ran again (None: nothing interrupted).
    recovery_s: float | None = None
    recovery: str = ""


@dataclass
class CrashTally:
    """A crash campaign's counts. ``interrupted``: runs with an activity that needed a second attempt
    (the disruption really hit work in flight); ``missed``: runs that ended before it was due."""

    runs: int = 0
    kills: int = 0
    terms: int = 0
    completed: int = 0
    duplicates: int = 0
    interrupted: int = 0
    missed: int = 0
    baseline_seconds: float = 0.0
    records: list[Any] = field(default_factory=list)
    recovery: RecoveryFigures = field(default_factory=RecoveryFigures)

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

    def summary(self) -> str:
        """The campaign's printed result; each campaign's report says it its way."""
        raise NotImplementedError

    def exit_code(self) -> int:
        """0 when every run completed without a duplicate side effect, else 1."""
        return 0 if self.completed == self.runs and self.duplicates == 0 else 1


#: How the recovery figures name each disruption.
KIND_LABEL = {"kill": "kill -9", "term": "SIGTERM", "restart": "dev-server restart"}


async def run_plan(
    plan: list[str],
    run: Callable[[str], Awaitable[Any]],
    tally: CrashTally,
    verbose: bool,
    missed: Callable[[Any], None] | None = None,
) -> None:
    """Run the planned disruptions in order and count them. A run that ended before its disruption
    was due counts as missed (``missed`` sees it) and the disruption is tried again with a new run;
    at most three runs a disruption, so that a too-short window cannot loop forever."""
    attempts, limit = 0, 3 * len(plan)
    while plan and attempts < limit:
        attempts += 1
        rec = await run(plan[0])
        if "not done" in rec.disruption:
            tally.missed += 1
            if missed is not None:
                missed(rec)
        else:
            kind = plan.pop(0)
            tally.count(rec)
            if rec.completed:
                tally.recovery.add(KIND_LABEL[kind], rec.recovery_s)
        emit(rec, verbose)


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
class OutcomeTally:
    """What the fault and Prometheus-down campaigns count alike: runs, runs that ended wrong or hung
    (each record's ``outcome``: ``wrong-outcome``, ``hung`` or a campaign's own), and the records."""

    runs: int = 0
    wrong: int = 0
    hung: int = 0
    records: list[Any] = field(default_factory=list)

    def count_outcome(self, record: Any) -> None:
        self.runs += 1
        self.wrong += record.outcome == "wrong-outcome"
        self.hung += record.outcome == "hung"
        self.records.append(record)


@dataclass
class FaultReport(OutcomeTally):
    faults_injected: int = 0
    succeeded: int = 0
    failed_as_expected: int = 0

    def count(self, record: FaultRun, faults: int) -> None:
        self.count_outcome(record)
        self.faults_injected += faults
        self.succeeded += record.outcome == "succeeded"
        self.failed_as_expected += record.outcome == "failed-as-expected"

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


def create_cluster_step(name: str, pool: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A ``cluster.create`` step that creates `shoot_cluster` named after the pipeline's ``site``
    input (``pool``: its worker pool; ``extra``: more step fields, such as ``needs``)."""
    with_ = {"site": "${{ inputs.site }}", "timeout_seconds": 600, "cluster": shoot_cluster("${{ inputs.site }}", pool)}
    return {"name": name, "uses": "cluster.create", **extra, "with": with_}


# --- the command line of a crash campaign --------------------------------------------------------------


class CrashCommand(argparse.ArgumentParser):
    """The command line of a crash campaign: runs with a worker killed, runs with one stopped, the seed."""

    def __init__(self, doc: str | None, runs: int, what: str = "pipelines") -> None:
        super().__init__(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        self.add_argument("--runs", type=int, default=runs, help=f"{what} with one worker killed (kill -9)")
        self.add_argument("--terms", type=int, default=0, help=f"{what} with one worker stopped by SIGTERM")
        self.add_argument("--seed", type=int, default=int(time.time()))

    def run_campaign(self, seed: int, prefix: str, campaign: Callable[[Path], Coroutine[Any, Any, CrashTally]]) -> int:
        """Run ``campaign`` in a fresh temporary state directory; print the seed first, the summary last."""
        print(f"seed={seed}", flush=True)
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            report = asyncio.run(campaign(Path(tmp)))
        print(report.summary())
        return report.exit_code()
