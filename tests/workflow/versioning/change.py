"""A deliberate workflow change in its three releases, for the versioning-policy test.

Release 1 waits one timer. Release 2 adds an audit timer before it: ``PatchedV2`` guards it with
``workflow.patched`` as the policy says, ``UnguardedV2`` does not. Release 3 (``DeprecatedV3``) runs
only the new branch and calls ``workflow.deprecate_patch`` once no run of release 1 is left.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

NAME = "PolicyExampleWorkflow"
PATCH = "policy-example-audit-timer"


@workflow.defn(name=NAME)
class ReleaseV1:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(seconds=10))
        return "done"


@workflow.defn(name=NAME)
class PatchedV2:
    @workflow.run
    async def run(self) -> str:
        if workflow.patched(PATCH):
            await workflow.sleep(timedelta(seconds=1))  # the audit step new runs take
        await workflow.sleep(timedelta(seconds=10))
        return "done"


@workflow.defn(name=NAME)
class UnguardedV2:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(seconds=1))
        await workflow.sleep(timedelta(seconds=10))
        return "done"


@workflow.defn(name=NAME)
class DeprecatedV3:
    @workflow.run
    async def run(self) -> str:
        workflow.deprecate_patch(PATCH)
        await workflow.sleep(timedelta(seconds=1))
        await workflow.sleep(timedelta(seconds=10))
        return "done"
