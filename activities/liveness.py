"""Heartbeats that say "this worker is alive", independent of how often the work itself progresses.

A heartbeat timeout of 10 s (workflows/activity_options.py) lets the server hand a killed worker's
attempt to another worker within seconds, but only if the activity heartbeats at least that often. A
watch that waits 20 s for the next event, a poll that backs off to 15 s, or one slow HTTP request
would miss it. Wrap such waits in :func:`keep_alive` (async) or sleep with :func:`sleep_heartbeating`
(sync activities running in threads): they repeat the activity's latest progress details, so a
retry still resumes from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from temporalio import activity
from temporalio.api.common.v1 import Payloads
from temporalio.api.workflowservice.v1 import RecordActivityTaskHeartbeatRequest

P = ParamSpec("P")
T = TypeVar("T")

#: How often a keep-alive heartbeats. The SDK forwards at most one heartbeat per 80 % of the
#: heartbeat timeout, so this only has to be comfortably below that.
INTERVAL_S = 2.0


@contextlib.asynccontextmanager
async def keep_alive(details: Callable[[], Any] | None = None, interval_s: float = INTERVAL_S) -> AsyncIterator[None]:
    """Heartbeat ``details()`` (or nothing) every ``interval_s`` while the block runs.

    Outside an activity (unit tests, benches calling the function directly) it does nothing.
    """
    if not activity.in_activity():
        yield
        return

    async def beat() -> None:
        while True:
            if details is None:
                activity.heartbeat()
            else:
                activity.heartbeat(details())
            await asyncio.sleep(interval_s)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def sleep_heartbeating(seconds: float, detail: Any = None, interval_s: float = INTERVAL_S) -> None:
    """``time.sleep`` for sync activities, heartbeating ``detail`` every ``interval_s``."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if activity.in_activity():
            activity.heartbeat(detail)
        time.sleep(min(left, interval_s))


@contextlib.contextmanager
def keep_alive_sync(details: Callable[[], Any] | None = None, interval_s: float = INTERVAL_S) -> Iterator[None]:
    """:func:`keep_alive` for sync activities (which run in a thread): a helper thread heartbeats
    ``details()`` every ``interval_s`` while one long blocking call runs (a BMC request with a 30 s
    timeout, a whole inventory read).

    The first beat comes after ``interval_s``, not at once: a block that ends sooner sends none. The
    SDK forwards the first heartbeat of an attempt to the server at once (an RPC and a write of the
    activity's state there), so beating at the start cost the server a heartbeat per BMC of a
    discovery whose reads take ~0.3 s, for no liveness gain (the heartbeat timeout is 10 s)."""
    if not activity.in_activity():
        yield
        return
    stop = threading.Event()
    ctx = contextvars.copy_context()  # the activity context lives in context variables

    def beat() -> None:
        while not stop.wait(interval_s):
            try:
                if details is None:
                    ctx.run(activity.heartbeat)
                else:
                    ctx.run(activity.heartbeat, details())
            except Exception:  # e.g. the worker hands the activity off (shutdown): its own thread sees it
                return

    thread = threading.Thread(target=beat, name="apeiro-keep-alive", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval_s + 1)


def kept_alive_sync(fn: Callable[P, T]) -> Callable[P, T]:
    """Decorator: the whole sync activity ``fn`` runs under :func:`keep_alive_sync`. For a step of a
    few blocking calls (each a BMC request that may take its 30 s timeout): a worker killed mid-call
    is noticed within the heartbeat timeout (10 s), not after the step's start-to-close."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with keep_alive_sync(interval_s=INTERVAL_S):  # read now, not at import: a test may shorten it
            return fn(*args, **kwargs)

    return wrapper


async def record_heartbeat_now(*details: Any) -> None:
    """Record heartbeat ``details`` with their own RPC and wait until the server holds them.

    ``activity.heartbeat`` is throttled (up to 80 % of the heartbeat timeout); a resumable copy that
    must not leave the server with stale progress (ocm.copy_blob), or a worker handing its attempts
    off at shutdown, sends the details at once with this. Needs the activity's client.
    """
    client = activity.client()
    info = activity.info()
    payloads = await client.data_converter.encode(list(details))
    await client.workflow_service.record_activity_task_heartbeat(
        RecordActivityTaskHeartbeatRequest(
            task_token=info.task_token,
            details=Payloads(payloads=payloads),
            identity=client.identity,
            namespace=client.namespace,
        )
    )
