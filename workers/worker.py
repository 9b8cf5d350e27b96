"""Run Temporal workers for any subset of task queues in one process."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workers.interceptors import StepMetricsInterceptor
from workers.progress import ProgressInterceptor
from workers.queues import contents_for
from workers.shutdown import ShutdownHandoffInterceptor, recovery_options, stop_workers_or_exit
from workers.versioning import deployment_config, registered_workflows
from workflows.user_errors import USER_DATA_ERRORS

log = logging.getLogger(__name__)

#: Pure, deterministic modules the workflow sandbox may share with the host instead of re-importing
#: them for every workflow run (re-importing the CEL parser per run costs ~50 ms).
PASSTHROUGH_MODULES = ("celpy", "lark", "pydantic", "pydantic_core", "yaml", "definitions")


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_workers(client: Client, queues: Sequence[str], *, max_concurrent_activities: int = 100,
                  activity_executor: ThreadPoolExecutor | None = None,
                  extra_activities: Mapping[str, Sequence[Callable[..., Any]]] | None = None,
                  extra_workflows: Mapping[str, Sequence[type]] | None = None,
                  deployment: WorkerDeploymentVersion | None = None,
                  closers: list[Callable[[], Any]] | None = None) -> list[Worker]:
    """One Worker per queue, sharing the client. Sync activities run on ``activity_executor``.

    ``closers`` receives each queue's ``close`` hook (HTTP clients its activities share), for the
    caller to run once the workers have stopped (:func:`run_workers` does).

    ``deployment`` runs them as that Worker Deployment Version (workers/versioning.py).

    ``extra_activities`` / ``extra_workflows`` add to a queue (tests register probes this way).
    """
    workers = []
    for queue in queues:
        contents = contents_for(queue)
        if extra_activities and queue in extra_activities:
            contents.activities = [*contents.activities, *extra_activities[queue]]
        if extra_workflows and queue in extra_workflows:
            contents.workflows = [*contents.workflows, *extra_workflows[queue]]
        if closers is not None and contents.close is not None:
            closers.append(contents.close)
        needs_executor = any(not asyncio.iscoroutinefunction(a) for a in contents.activities)
        workers.append(
            Worker(
                client,
                task_queue=queue,
                workflows=registered_workflows(contents.workflows, deployment),
                activities=list(contents.activities),
                activity_executor=(activity_executor or ThreadPoolExecutor(max_concurrent_activities))
                if needs_executor
                else None,
                max_concurrent_activities=max_concurrent_activities,
                workflow_runner=workflow_runner(),
                interceptors=[StepMetricsInterceptor(), ShutdownHandoffInterceptor(), ProgressInterceptor()],
                # Rolling restarts and crashes: grace period, sticky-queue timeout (workers/shutdown.py).
                **recovery_options(),
                # Input typed into the Temporal UI that does not decode into a workflow's model fails
                # that workflow with pydantic's message (field path and reason) instead of failing
                # the workflow task, which Temporal would retry forever; so does any other exception
                # from user data (the one rule, workflows/user_errors.py). Non-determinism still fails
                # the task.
                workflow_failure_exception_types=list(USER_DATA_ERRORS),
                deployment_config=deployment_config(deployment),
            )
        )
    return workers


async def run_workers(client: Client, queues: Sequence[str], stop: asyncio.Event | None = None,
                      deployment: WorkerDeploymentVersion | None = None) -> None:
    """Run until ``stop`` is set or SIGINT/SIGTERM arrives; then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    closers: list[Callable[[], Any]] = []
    workers = build_workers(client, queues, deployment=deployment, closers=closers)
    async with contextlib.AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        log.info("workers running for queues: %s", ", ".join(queues))
        await stop.wait()
        await stop_workers_or_exit(workers)
    for close in closers:  # the activities are done: close what they shared (HTTP clients)
        try:
            done = close()
            if inspect.isawaitable(done):
                await done
        except Exception:  # a failing close must not hide the others or turn a clean stop into a crash
            log.warning("closing a queue's shared clients failed", exc_info=True)
