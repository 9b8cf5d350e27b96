"""Whether a worker process polls a task queue: its identity among the queue's pollers (Temporal's
DescribeTaskQueue), the way the UI's *Workers* tab shows it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError


def identity(pid: int) -> str:
    """The Python SDK's default worker identity."""
    return f"{pid}@{socket.gethostname()}"


async def pollers(client: Client, queue: str, kind: TaskQueueType.ValueType) -> set[str]:
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=kind,
        )
    )
    return {p.identity for p in resp.pollers}


async def wait_polling(client: Client, queue: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Until ``proc`` polls ``queue`` for workflow and activity tasks; fails with its output if it exits."""
    wanted = identity(proc.pid)
    deadline = time.monotonic() + timeout
    seen: dict[str, set[str]] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"worker for {queue} exited with {proc.returncode}: {err[-3000:]}")
        try:
            seen = {
                "workflow": await pollers(client, queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
                "activity": await pollers(client, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
            }
        except RPCError as exc:  # a busy dev server may cancel one call ("operation was canceled"): ask again
            seen = {"error": {str(exc)}}
        if all(wanted in ids for ids in seen.values()):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{wanted} does not poll {queue} after {timeout:.0f} s (pollers: {seen})")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM (what `docker stop` sends) and wait for the graceful shutdown; the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"process {proc.pid} did not stop within {timeout} s of SIGTERM") from None
    return proc.returncode
