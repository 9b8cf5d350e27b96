"""Stand-in activities for ComponentTransportWorkflow and the worker that runs them (shared by the
transport workflow tests, the overlap tests and the script that recorded the pre-overlap history)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from definitions.ocm import (
    BlobCopyInput,
    BlobCopyResult,
    BlobTask,
    ComponentVersionRef,
    FinaliseInput,
    ManifestCopyInput,
    ManifestTask,
    PreparedVersion,
    RepositorySpec,
    SigningSpec,
    TransportedVersion,
    TransportInput,
    TransportPlan,
    TransportResult,
    VersionPlan,
)
from workers.config import data_converter
from workers.worker import workflow_runner
from workflows.transport import ComponentTransportWorkflow

BIG = f"sha256:{99:064x}"


def blob(i: int, size: int = 10, dst_repo: str = "d") -> BlobTask:
    return BlobTask(src_repo="s", dst_repo=dst_repo, digest=f"sha256:{i:064x}", size=size)


class TwoVersions:
    """base (1 small blob) then app (4 small blobs and one large one, listed last, and a manifest)."""

    def __init__(self, shared: bool = False, image_repo: str = "d") -> None:
        self.events: list[str] = []
        self.shared = shared  # app also carries base's blob 0 (same repository): it must be copied once
        self.image_repo = image_repo  # where app's small blobs and its manifest go (the big blob: "d")

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="ocm.plan_transport")
        async def plan(inp: TransportInput) -> TransportPlan:
            return TransportPlan(
                versions=[
                    VersionPlan(name="acme/base", version="1", action="copy", blobs=[blob(0)]),
                    VersionPlan(
                        name="acme/app",
                        version="1",
                        action="copy",
                        blobs=[
                            *(blob(i, dst_repo=self.image_repo) for i in range(1, 5)),
                            BlobTask(src_repo="s", dst_repo="d", digest=BIG, size=10**9),
                        ],
                        manifests=[
                            ManifestTask(
                                src_registry="http://src:5000", src_repo="s", dst_repo=self.image_repo, digest=BIG
                            )
                        ],
                    ),
                ]
            )

        @activity.defn(name="ocm.copy_blob")
        async def copy(inp: BlobCopyInput) -> BlobCopyResult:
            name = "big" if inp.blob.digest == BIG else inp.blob.digest[-1]
            self.events.append(f"start {name}")
            await asyncio.sleep(0.3 if name == "big" else 0.01)
            self.events.append(f"done {name}")
            return BlobCopyResult(digest=inp.blob.digest, size=inp.blob.size, bytes_sent=inp.blob.size)

        @activity.defn(name="ocm.copy_manifests")
        async def manifests(inp: ManifestCopyInput) -> list[str]:
            self.events.append("manifests")
            return [m.digest for m in inp.manifests]

        @activity.defn(name="ocm.prepare_version")
        async def prepare(inp: FinaliseInput) -> PreparedVersion:
            self.events.append(f"prepare {inp.plan.name}")
            return prepared_for(inp)

        @activity.defn(name="ocm.finalise_version")
        async def finalise(inp: FinaliseInput) -> TransportedVersion:
            self.events.append(f"finalise {inp.plan.name}" + (" prepared" if inp.prepared else ""))
            return TransportedVersion(name=inp.plan.name, version=inp.plan.version, outcome="copied")

        return [plan, copy, manifests, prepare, finalise]


class Fakes:
    """One version to skip, then one with ten small blobs; counts how many copies run at once."""

    def __init__(self, fail_blob: str | None = None) -> None:
        self.running = 0
        self.peak = 0
        self.order: list[str] = []
        self.fail_blob = fail_blob

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="ocm.plan_transport")
        async def plan(inp: TransportInput) -> TransportPlan:
            return TransportPlan(
                versions=[
                    VersionPlan(name="acme/base", version="1", action="skip"),
                    VersionPlan(name="acme/app", version="1", action="copy", blobs=[blob(i) for i in range(10)]),
                ]
            )

        @activity.defn(name="ocm.copy_blob")
        async def copy(inp: BlobCopyInput) -> BlobCopyResult:
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                await asyncio.sleep(0.02)
                if inp.blob.digest == self.fail_blob:
                    raise ApplicationError("blob is tampered", type="DigestMismatch", non_retryable=True)
                return BlobCopyResult(digest=inp.blob.digest, size=10, bytes_sent=10)
            finally:
                self.running -= 1
                self.order.append("copy")

        @activity.defn(name="ocm.copy_manifests")
        async def manifests(inp: ManifestCopyInput) -> list[str]:
            return []

        @activity.defn(name="ocm.prepare_version")
        async def prepare(inp: FinaliseInput) -> PreparedVersion:
            self.order.append("prepare")
            return prepared_for(inp)

        @activity.defn(name="ocm.finalise_version")
        async def finalise(inp: FinaliseInput) -> TransportedVersion:
            self.order.append("finalise")
            return TransportedVersion(
                name=inp.plan.name, version=inp.plan.version, outcome="copied", signature_digest="ab" * 32
            )

        return [plan, copy, manifests, prepare, finalise]


def prepared_for(inp: FinaliseInput) -> PreparedVersion:
    """What ``ocm.prepare_version`` answers for ``inp``: made-up descriptors of the right shape."""
    layer = {"mediaType": "application/x-tar", "digest": f"sha256:{1:064x}", "size": 1}
    config = {"mediaType": "application/json", "digest": f"sha256:{2:064x}", "size": 1}
    return PreparedVersion(descriptor_layer=layer, config=config, blob_layers=[])


def transport_input(parallel: int = 2, sign: SigningSpec | None = None) -> TransportInput:
    return TransportInput(
        source=RepositorySpec(url="http://src:5000/ocm"),
        target=RepositorySpec(url="http://dst:5000/ocm"),
        components=[ComponentVersionRef(name="acme/app", version="1")],
        parallel_blobs=parallel,
        sign=sign,
    )


@asynccontextmanager
async def transport_worker(env: WorkflowEnvironment, activities: list[Callable[..., Any]]) -> AsyncIterator[str]:
    """A worker for the transport workflow and the given stand-ins on a fresh queue (yielded)."""
    queue = f"ocm-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[ComponentTransportWorkflow],
        activities=activities,
        workflow_runner=workflow_runner(),
    ):
        yield queue


async def start_transport(
    env: WorkflowEnvironment, queue: str, inp: TransportInput
) -> WorkflowHandle[Any, TransportResult]:
    return await env.client.start_workflow(
        "ComponentTransportWorkflow", inp, id=queue, task_queue=queue, result_type=TransportResult
    )


async def replay_failure(history: WorkflowHistory) -> Exception | None:
    """Replays a transport history with the current workflow code; None when it replays cleanly."""
    replay = await Replayer(
        debug_mode=True,
        workflows=[ComponentTransportWorkflow],
        data_converter=data_converter(),
        workflow_runner=workflow_runner(),
    ).replay_workflow(history, raise_on_replay_failure=False)
    return replay.replay_failure
