"""Worker Deployment Versioning on the dev server: a new build takes new work, pinned runs stay.

Runs start on build A; build B starts with changed workflows; `set_current` (what `apeiro deploy
set-current` calls) moves the current version to B; every run finishes; the PINNED runs finished
on A, the AUTO_UPGRADE ones on B, and `describe` listed the pinned runs on A in between.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

import pytest
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Worker

from tests.integration.versioning.builds import LongLivedA, LongLivedB, ShortA, ShortB
from workers.cli import main
from workers.deploy import DeployError, check_deployment, describe, set_current
from workers.versioning import deployment_config

pytestmark = pytest.mark.integration


def _worker(client: Client, queue: str, deployment: str, build: str, workflows: list[type]) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        workflows=workflows,
        deployment_config=deployment_config(WorkerDeploymentVersion(deployment, build)),
    )


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110 (polling the server's visibility)
            await asyncio.sleep(0.2)


async def _set_current_when_registered(client: Client, deployment: str, build: str) -> None:
    """A version exists once its workers have polled; retry until the server knows it."""
    async with asyncio.timeout(30):
        while True:
            try:
                await set_current(client, deployment, build)
                return
            except DeployError:
                await asyncio.sleep(0.3)


async def test_pinned_runs_finish_on_the_old_build_auto_upgrade_moves(
    dev_client: Client, task_queue: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_client.service_client.config.target_host)
    deployment = f"apeiro-{uuid.uuid4().hex[:8]}"
    async with _worker(dev_client, task_queue, deployment, "build-a", [ShortA, LongLivedA]):
        await _set_current_when_registered(dev_client, deployment, "build-a")
        short = [
            await dev_client.start_workflow(
                "VersioningShort", id=f"short-{i}-{deployment}", task_queue=task_queue, result_type=str
            )
            for i in range(2)
        ]
        long = [
            await dev_client.start_workflow(
                "VersioningLongLived", id=f"long-{i}-{deployment}", task_queue=task_queue, result_type=str
            )
            for i in range(2)
        ]

        async def all_on_a() -> bool:
            view = await describe(dev_client, deployment)
            return sum(1 for r in view.runs if r.build_id == "build-a") == 4

        await _until(all_on_a)
        async with _worker(dev_client, task_queue, deployment, "build-b", [ShortB, LongLivedB]):
            await _until(lambda: _registered(dev_client, deployment, "build-b"))
            capsys.readouterr()
            # The operator's command: `apeiro deploy set-current D build-b`, then `apeiro deploy describe D`.
            assert await asyncio.to_thread(main, ["deploy", "set-current", deployment, "build-b"]) == 0
            assert "was build-a" in capsys.readouterr().out
            assert await asyncio.to_thread(main, ["deploy", "describe", deployment]) == 0
            table = capsys.readouterr().out
            assert f"deployment {deployment}: current build build-b" in table
            assert all(f"build-a                  pinned       VersioningShort {h.id}" in table for h in short), table
            view = await describe(dev_client, deployment)
            assert view.current_build_id == "build-b"
            assert {v.build_id for v in view.versions} == {"build-a", "build-b"}
            pinned_on_a = {r.workflow_id for r in view.runs if r.build_id == "build-a" and r.behavior == "pinned"}
            assert pinned_on_a == {h.id for h in short}
            new = await dev_client.start_workflow(
                "VersioningShort", id=f"short-new-{deployment}", task_queue=task_queue, result_type=str
            )
            for h in [*short, *long, new]:
                await h.signal("proceed")
            results = {h.id: await asyncio.wait_for(h.result(), 30) for h in [*short, *long, new]}
    assert [results[h.id] for h in short] == ["A", "A"], results
    assert [results[h.id] for h in long] == ["B", "B"], results
    assert results[new.id] == "B"


async def _registered(client: Client, deployment: str, build: str) -> bool:
    view = await describe(client, deployment, with_runs=False)
    return build in {v.build_id for v in view.versions}


async def test_unknown_build_cannot_become_current(dev_client: Client) -> None:
    deployment = f"apeiro-{uuid.uuid4().hex[:8]}"
    with pytest.raises(DeployError, match=r"no worker deployment|refused"):
        await set_current(dev_client, deployment, "never-started")
    with pytest.raises(DeployError, match="no worker deployment"):
        await describe(dev_client, deployment)


async def test_cli_refuses_a_build_the_server_does_not_know(
    dev_client: Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_client.service_client.config.target_host)
    code = await asyncio.to_thread(main, ["deploy", "set-current", "apeiro-nowhere", "never-started"])
    err = capsys.readouterr().err
    assert code == 2
    assert "never-started" in err and "Start workers with --deployment-name apeiro-nowhere" in err


async def test_a_worker_on_a_build_the_server_does_not_know_says_how_to_make_it_current(
    dev_client: Client, task_queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The pre-start check of a versioned worker (``check_deployment``): a new deployment or a build
    the server has not seen is no error (the first poll registers it), and the log names the command
    that sends new runs to it."""
    caplog.set_level(logging.INFO, logger="workers.deploy")
    deployment = f"apeiro-{uuid.uuid4().hex[:8]}"
    assert await check_deployment(dev_client, WorkerDeploymentVersion(deployment, "b1")) is None
    assert f"deployment {deployment} is new: build b1 registers with its first poll" in caplog.text
    assert f"`apeiro deploy set-current {deployment} b1`" in caplog.text
    async with _worker(dev_client, task_queue, deployment, "b1", [ShortA]):

        async def registered() -> bool:
            try:
                return await _registered(dev_client, deployment, "b1")
            except DeployError:  # not until the worker's first poll
                return False

        await _until(registered)
        caplog.clear()
        assert await check_deployment(dev_client, WorkerDeploymentVersion(deployment, "b2")) is None
    assert f"build b2 is new to deployment {deployment} (current: none)" in caplog.text
    assert f"`apeiro deploy set-current {deployment} b2`" in caplog.text
