"""Graceful rolling restarts: what a worker does between SIGTERM and exit.

Operators restart workers all the time (rolling deploys, node drains). Left to the defaults, a
stopped worker's activities are cancelled at once and wait out a retry back-off, or, if the process
dies first, their heartbeat timeout. Here, on SIGTERM:

1. every Worker of the process stops polling at the same moment (:func:`stop_workers`), so no new
   task lands on a process that is going away;
2. a *long* activity (one with a heartbeat timeout: watches, waits, copies) is handed off at once:
   it is cancelled, its last progress details are recorded on the server, and it fails with a
   retryable ``WorkerShutdown`` error whose next retry is due immediately, so a worker that is still
   polling starts the next attempt within about a second and resumes from that progress;
3. a *short* activity (one API call, no heartbeat timeout) may finish within the grace period
   (:func:`shutdown_grace`, ``APEIRO_SHUTDOWN_GRACE_SECONDS``, default 10 s). If it is still running
   when the grace period ends, the SDK cancels it and it is handed off like a long one.

The process needs the grace period plus a margin before the orchestrator sends SIGKILL: compose
``stop_grace_period: 15s``, Kubernetes ``terminationGracePeriodSeconds: 15`` or more.

Sync activities (Redfish, registration: they run in threads and cannot be cancelled mid-call) are
handed off at their next heartbeat after SIGTERM; their heartbeats come every couple of seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from activities.liveness import record_heartbeat_now

log = logging.getLogger(__name__)

GRACE_ENV = "APEIRO_SHUTDOWN_GRACE_SECONDS"
DEFAULT_GRACE_S = 10.0
#: The failure type of a handed-off attempt. It must stay retryable (in no non_retryable list).
HANDOFF_ERROR = "WorkerShutdown"
#: When the server schedules the next attempt of a handed-off activity (instead of the back-off).
HANDOFF_RETRY_DELAY = timedelta(milliseconds=100)


def shutdown_grace() -> timedelta:
    """How long short activities may run on after SIGTERM (``APEIRO_SHUTDOWN_GRACE_SECONDS``)."""
    raw = os.environ.get(GRACE_ENV, "").strip()
    if not raw:
        return timedelta(seconds=DEFAULT_GRACE_S)
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{GRACE_ENV}={raw!r} is not a number of seconds (e.g. 10)") from None
    if seconds < 0:
        raise ValueError(f"{GRACE_ENV}={raw!r} must be 0 or more seconds")
    return timedelta(seconds=seconds)


#: A workflow's next task waits this long on the sticky queue of the worker that ran its last task
#: before any worker may take it (SDK default 10 s). After a kill -9 every workflow cached on the
#: dead worker pays it once; a shorter wait only costs a history replay when a live worker is busy.
STICKY_SCHEDULE_TO_START = timedelta(seconds=3)


def recovery_options() -> dict[str, Any]:
    """Worker options for crashes and rolling restarts (keyword arguments of ``Worker``)."""
    return {
        "graceful_shutdown_timeout": shutdown_grace(),
        "sticky_queue_schedule_to_start_timeout": STICKY_SCHEDULE_TO_START,
    }


def handoff_error() -> ApplicationError:
    info = activity.info()
    return ApplicationError(
        f"worker shutting down: attempt {info.attempt} of {info.activity_type} handed to another worker, "
        "which resumes from the last heartbeat",
        type=HANDOFF_ERROR,
        next_retry_delay=HANDOFF_RETRY_DELAY,
    )


#: How long past the grace period a stopping process waits for its Workers before it exits anyway.
#: A Temporal server that is gone never answers the shutdown, and the SDK retries its polls forever.
STOP_MARGIN_S = 5.0
#: Exit status when the Workers did not stop within the grace period and the margin.
STUCK_EXIT_CODE = 1


def exit_now(code: int) -> NoReturn:
    """Leave the process at once, logs flushed: the SDK's Workers and its runtime threads would keep a
    normal interpreter exit waiting for a server that does not answer."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


async def stop_workers_or_exit(workers: Sequence[Worker]) -> None:
    """:func:`stop_workers`, but never forever: a second SIGINT/SIGTERM exits at once (128 + the
    signal's number, as a shell reports it), and so does the grace period plus :data:`STOP_MARGIN_S`
    running out (:data:`STUCK_EXIT_CODE`), each with a log line saying what was left behind."""
    loop = asyncio.get_running_loop()
    bound = shutdown_grace().total_seconds() + STOP_MARGIN_S
    forced: asyncio.Future[Any] = loop.create_future()

    def second_signal(signum: int) -> None:
        if not forced.done():
            forced.set_result(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, second_signal, int(sig))
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop_workers(workers))
    done, _ = await asyncio.wait({stopping, forced}, timeout=bound, return_when=asyncio.FIRST_COMPLETED)
    if stopping in done:
        stopping.result()
        return
    if forced in done:
        log.error(
            "second signal while shutting down: exiting now; running activities are not handed off "
            "and resume on another worker after their heartbeat timeout"
        )
        exit_now(forced.result())
    log.error(
        "workers did not stop within %.0f s (grace period %s + %.0f s): is the Temporal server reachable? "
        "Exiting now; running activities resume on another worker after their heartbeat timeout",
        bound,
        shutdown_grace(),
        STOP_MARGIN_S,
    )
    exit_now(STUCK_EXIT_CODE)


async def stop_workers(workers: Sequence[Worker]) -> None:
    """Shut every Worker of the process down at once (an exit stack would stop them one by one and
    keep the others polling meanwhile). Returns when all activities are finished or handed off."""
    log.info("shutting down: polling stops; short activities get %s, long ones are handed off", shutdown_grace())
    await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)


class _Progress:
    """What an attempt last reported, so a handoff can record it exactly (heartbeats are throttled)."""

    def __init__(self) -> None:
        self.details: tuple[Any, ...] | None = None
        #: A heartbeating activity that runs in a thread: handed off at its next heartbeat.
        self.sync_long = False


class _Outbound(ActivityOutboundInterceptor):
    def __init__(self, next: ActivityOutboundInterceptor, progress: _Progress) -> None:
        super().__init__(next)
        self._progress = progress

    def heartbeat(self, *details: Any) -> None:
        if details:
            self._progress.details = details
        super().heartbeat(*details)
        # A thread-pool activity cannot be cancelled mid-call. The SDK runs this on the event loop
        # and re-raises in the calling thread, so the activity's next heartbeat ends the attempt.
        if self._progress.sync_long and activity.is_worker_shutdown():
            raise handoff_error()


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor) -> None:
        super().__init__(next)
        self._progress = _Progress()

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        super().init(_Outbound(outbound, self._progress))

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        long = bool(activity.info().heartbeat_timeout)
        is_async = asyncio.iscoroutinefunction(input.fn)
        self._progress.sync_long = long and not is_async
        try:
            if long and is_async:
                return await self._run_until_shutdown(input)
            return await super().execute_activity(input)
        except (asyncio.CancelledError, CancelledError):
            # The grace period ended (the SDK cancels what still runs): retry elsewhere at once
            # rather than report a cancellation nobody asked for.
            if activity.is_worker_shutdown() and not _cancel_requested():
                raise handoff_error() from None
            raise

    async def _run_until_shutdown(self, input: ExecuteActivityInput) -> Any:
        work = asyncio.ensure_future(super().execute_activity(input))
        shutdown = asyncio.ensure_future(activity.wait_for_worker_shutdown())
        try:
            await asyncio.wait({work, shutdown}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            raise
        finally:
            shutdown.cancel()
        if work.done():
            return work.result()
        work.cancel()
        try:
            result = await work
        except (asyncio.CancelledError, CancelledError):
            pass
        else:
            return result  # it finished in the meantime: keep the result
        await self._record_progress()
        raise handoff_error()

    async def _record_progress(self) -> None:
        """Send the last heartbeat details now, unthrottled: the next attempt resumes from them."""
        if self._progress.details is None:
            return  # the activity keeps its own exact record (ocm.copy_blob) or has none
        try:
            await record_heartbeat_now(*self._progress.details)
        except Exception as exc:  # the throttled heartbeat already sent older progress
            log.warning("could not record progress before handing off: %s", exc)


def _cancel_requested() -> bool:
    details = activity.cancellation_details()
    return bool(details and details.cancel_requested)


class ShutdownHandoffInterceptor(Interceptor):
    """Hand long activities to another worker at once when this one shuts down (see module doc)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)
