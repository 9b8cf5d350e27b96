"""Stand-in activities for a two-version transport with one large blob (shared by the overlap tests
and the script that recorded the pre-overlap history)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import activity

from definitions.ocm import (
    BlobCopyInput,
    BlobCopyResult,
    BlobTask,
    ComponentVersionRef,
    FinaliseInput,
    ManifestCopyInput,
    ManifestTask,
    RepositorySpec,
    TransportedVersion,
    TransportInput,
    TransportPlan,
    VersionPlan,
)

BIG = f"sha256:{99:064x}"


def blob(i: int, size: int = 10) -> BlobTask:
    return BlobTask(src_repo="s", dst_repo="d", digest=f"sha256:{i:064x}", size=size)


class TwoVersions:
    """base (1 small blob) then app (4 small blobs and one large one, listed last, and a manifest)."""

    def __init__(self, shared: bool = False) -> None:
        self.events: list[str] = []
        self.shared = shared  # app also carries base's blob 0 (same repository): it must be copied once

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
                            *(blob(i) for i in range(1, 5)),
                            BlobTask(src_repo="s", dst_repo="d", digest=BIG, size=10**9),
                        ],
                        manifests=[
                            ManifestTask(src_registry="http://src:5000", src_repo="s", dst_repo="d", digest=BIG)
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

        @activity.defn(name="ocm.finalise_version")
        async def finalise(inp: FinaliseInput) -> TransportedVersion:
            self.events.append(f"finalise {inp.plan.name}")
            return TransportedVersion(name=inp.plan.name, version=inp.plan.version, outcome="copied")

        return [plan, copy, manifests, finalise]


def transport_input(parallel: int = 2) -> TransportInput:
    return TransportInput(
        source=RepositorySpec(url="http://src:5000/ocm"),
        target=RepositorySpec(url="http://dst:5000/ocm"),
        components=[ComponentVersionRef(name="acme/app", version="1")],
        parallel_blobs=parallel,
    )
