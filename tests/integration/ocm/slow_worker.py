"""A worker for the `ocm` activities whose uploads are slowed down, so a test can kill it mid-blob.

Run: python -m tests.integration.ocm.slow_worker ADDRESS TASK_QUEUE DELAY_SECONDS
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.ocm import oci
from activities.ocm.transport import ACTIVITIES
from workers.config import data_converter
from workers.worker import workflow_runner
from workflows.transport import ComponentTransportWorkflow

REPO = Path(__file__).resolve().parents[3]


def spawn(address: str, queue: str, delay_s: float) -> subprocess.Popen[bytes]:
    """Start this worker as a process in its own session (a test SIGKILLs it with ``os.killpg``) and
    wait until it polls; its stdout then says ``chunk OFFSET`` before every chunk it sends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.ocm.slow_worker", address, queue, str(delay_s)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    if proc.stdout is None or proc.stdout.readline().strip() != b"ready":
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        raise AssertionError("the slow worker did not start")
    return proc


def transport_worker(client: Client, queue: str) -> Worker:
    """The transport workflow and the real `ocm` activities on ``queue`` (enter it with ``async with``)."""
    return Worker(
        client,
        task_queue=queue,
        workflows=[ComponentTransportWorkflow],
        activities=list(ACTIVITIES),
        workflow_runner=workflow_runner(),
    )


async def main(address: str, queue: str, delay: float) -> None:
    original = oci.RegistryClient.upload_chunk

    async def slow(self: oci.RegistryClient, location: str, repo: str, data: bytes, offset: int) -> str:
        print(f"chunk {offset}", flush=True)
        await asyncio.sleep(delay)
        return await original(self, location, repo, data, offset)

    oci.RegistryClient.upload_chunk = slow  # type: ignore[method-assign]
    client = await Client.connect(address, data_converter=data_converter())
    async with transport_worker(client, queue):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
