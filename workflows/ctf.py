"""CTF export and import workflows (task queue ``ocm``): air-gapped transport through an archive.

Export: plan (read, verify, write small pieces) -> one activity per blob (resumes from its ``.part``
file) -> seal (index last). Import: plan (check the whole archive and the target) -> one activity
per blob (resumes its chunked upload) -> finish (manifests, then verify at the target). Either can
be re-run with the same input: work already done is found and skipped.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

from definitions.ocm_ctf import (
    CtfExportBlobInput,
    CtfExportInput,
    CtfExportPlan,
    CtfExportResult,
    CtfFinishInput,
    CtfImportBlobInput,
    CtfImportedVersion,
    CtfImportInput,
    CtfImportPlan,
    CtfImportResult,
    CtfSealInput,
)

with workflow.unsafe.imports_passed_through():
    from workflows.step_activity import call_activity
    from workflows.transport import NON_RETRYABLE

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=[*NON_RETRYABLE, "ArchiveInvalid"],
)
T = TypeVar("T")


class _ArchiveTransfer:
    """Plan -> one activity per blob (``parallel_blobs`` at a time, counted for the ``progress``
    query) -> one finishing activity; every call with :data:`RETRY`."""

    def __init__(self, state: str = "planning") -> None:
        self._state, self._done, self._total = state, 0, 0

    @workflow.query
    def progress(self) -> dict[str, object]:
        return {"state": self._state, "blobs_done": self._done, "blobs_total": self._total}

    async def _call(
        self, activity: str, arg: Any, result_type: type[T], start_to_close: timedelta, heartbeat: timedelta
    ) -> T:
        return await call_activity(
            activity, arg, result_type, start_to_close=start_to_close, heartbeat=heartbeat, retry_policy=RETRY
        )

    async def _blobs(
        self, state: str, activity: str, args: list[Any], result_type: type[T], inp: CtfExportInput | CtfImportInput
    ) -> list[T]:
        self._total, self._state = len(args), state
        sem = asyncio.Semaphore(inp.parallel_blobs)
        heartbeat = timedelta(seconds=inp.heartbeat_timeout_s)

        async def one(arg: Any) -> T:
            async with sem:
                r = await self._call(activity, arg, result_type, timedelta(hours=6), heartbeat)
                self._done += 1
                return r

        return list(await asyncio.gather(*[one(a) for a in args]))


@workflow.defn(name="CtfExportWorkflow")
class CtfExportWorkflow(_ArchiveTransfer):
    @workflow.run
    async def run(self, inp: CtfExportInput) -> CtfExportResult:
        plan = await self._call("ocm.ctf_plan_export", inp, CtfExportPlan, timedelta(minutes=15), timedelta(minutes=2))
        blobs = [CtfExportBlobInput(source=inp.source, staging=plan.staging, blob=b) for b in plan.blobs]
        await self._blobs("writing blobs", "ocm.ctf_export_blob", blobs, int, inp)
        self._state = "sealing"
        seal = CtfSealInput(archive=inp.archive, format=inp.format, plan=plan)
        result = await self._call("ocm.ctf_seal", seal, CtfExportResult, timedelta(hours=1), timedelta(minutes=5))
        self._state = "done"
        return result


@workflow.defn(name="CtfImportWorkflow")
class CtfImportWorkflow(_ArchiveTransfer):
    def __init__(self) -> None:
        super().__init__("checking archive")

    @workflow.run
    async def run(self, inp: CtfImportInput) -> CtfImportResult:
        plan = await self._call("ocm.ctf_plan_import", inp, CtfImportPlan, timedelta(hours=1), timedelta(minutes=2))
        blobs = [
            CtfImportBlobInput(archive=inp.archive, target=inp.target, blob=b, chunk_size=inp.chunk_size)
            for b in plan.blobs
        ]
        stats = await self._blobs("uploading blobs", "ocm.ctf_import_blob", blobs, dict[str, int], inp)
        self._state = "writing versions"
        finish = CtfFinishInput(archive=inp.archive, target=inp.target, plan=plan, verify=inp.verify)
        versions = await self._call(
            "ocm.ctf_finish_import", finish, list[CtfImportedVersion], timedelta(minutes=30), timedelta(minutes=2)
        )
        self._state = "done"
        return CtfImportResult(
            versions=versions,
            blobs_uploaded=sum(1 for s in stats if not s.get("skipped")),
            bytes_sent=sum(s.get("sent", 0) for s in stats),
            bytes_resumed=sum(s.get("resumed_from", 0) for s in stats),
            warnings=plan.warnings,
        )
