"""Two builds of the same two workflow types, for the Worker Deployment Versioning test.

Build A and build B differ in what the run returns after its signal (the build's letter), so the
result says which build ran the last task. ``Short`` is PINNED, ``LongLived`` AUTO_UPGRADE, as in
the product (short workflows pinned, long-lived ones moved to the new build).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import VersioningBehavior


class _Waits:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn(name="VersioningShort", versioning_behavior=VersioningBehavior.PINNED)
class ShortA(_Waits):
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "A"


@workflow.defn(name="VersioningLongLived", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class LongLivedA(_Waits):
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "A"


@workflow.defn(name="VersioningShort", versioning_behavior=VersioningBehavior.PINNED)
class ShortB(_Waits):
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "B"


@workflow.defn(name="VersioningLongLived", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class LongLivedB(_Waits):
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "B"
