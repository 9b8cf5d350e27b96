"""CTF export and import workflows (task queue ``ocm``): air-gapped transport through an archive.

Export: plan (read, verify, write small pieces) -> one activity per blob (resumes from its ``.part``
file) -> seal (index last). Import: plan (check the whole archive and the target) -> one activity
per blob (resumes its chunked upload) -> finish (manifests, then verify at the target). Either can
be re-run with the same input: work already done is found and skipped.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

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
    from workflows.transport import NON_RETRYABLE

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=[*NON_RETRYABLE, "ArchiveInvalid"],
)


def _progress(state: str, done: int, total: int) -> dict[str, object]:
    return {"state": state, "blobs_done": done, "blobs_total": total}


@workflow.defn(name="CtfExportWorkflow")
class CtfExportWorkflow:
    def __init__(self) -> None:
        self._state, self._done, self._total = "planning", 0, 0

    @workflow.query
    def progress(self) -> dict[str, object]:
        return _progress(self._state, self._done, self._total)

    @workflow.run
    async def run(self, inp: CtfExportInput) -> CtfExportResult:
        plan = await workflow.execute_activity(
            "ocm.ctf_plan_export",
            inp,
            result_type=CtfExportPlan,
            start_to_close_timeout=timedelta(minutes=15),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        self._total, self._state = len(plan.blobs), "writing blobs"
        sem = asyncio.Semaphore(inp.parallel_blobs)

        async def one(arg: CtfExportBlobInput) -> int:
            async with sem:
                n = await workflow.execute_activity(
                    "ocm.ctf_export_blob",
                    arg,
                    result_type=int,
                    start_to_close_timeout=timedelta(hours=6),
                    heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
                    retry_policy=RETRY,
                )
                self._done += 1
                return n

        await asyncio.gather(
            *[one(CtfExportBlobInput(source=inp.source, staging=plan.staging, blob=b)) for b in plan.blobs]
        )
        self._state = "sealing"
        result = await workflow.execute_activity(
            "ocm.ctf_seal",
            CtfSealInput(archive=inp.archive, format=inp.format, plan=plan),
            result_type=CtfExportResult,
            start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(minutes=5),
            retry_policy=RETRY,
        )
        self._state = "done"
        return result


@workflow.defn(name="CtfImportWorkflow")
class CtfImportWorkflow:
    def __init__(self) -> None:
        self._state, self._done, self._total = "checking archive", 0, 0

    @workflow.query
    def progress(self) -> dict[str, object]:
        return _progress(self._state, self._done, self._total)

    @workflow.run
    async def run(self, inp: CtfImportInput) -> CtfImportResult:
        plan = await workflow.execute_activity(
            "ocm.ctf_plan_import",
            inp,
            result_type=CtfImportPlan,
            start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        self._total, self._state = len(plan.blobs), "uploading blobs"
        sem = asyncio.Semaphore(inp.parallel_blobs)

        async def one(arg: CtfImportBlobInput) -> dict[str, int]:
            async with sem:
                r = await workflow.execute_activity(
                    "ocm.ctf_import_blob",
                    arg,
                    result_type=dict[str, int],
                    start_to_close_timeout=timedelta(hours=6),
                    heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
                    retry_policy=RETRY,
                )
                self._done += 1
                return r

        stats = await asyncio.gather(
            *[
                one(CtfImportBlobInput(archive=inp.archive, target=inp.target, blob=b, chunk_size=inp.chunk_size))
                for b in plan.blobs
            ]
        )
        self._state = "writing versions"
        versions = await workflow.execute_activity(
            "ocm.ctf_finish_import",
            CtfFinishInput(archive=inp.archive, target=inp.target, plan=plan, verify=inp.verify),
            result_type=list[CtfImportedVersion],
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        self._state = "done"
        return CtfImportResult(
            versions=versions,
            blobs_uploaded=sum(1 for s in stats if not s.get("skipped")),
            bytes_sent=sum(s.get("sent", 0) for s in stats),
            bytes_resumed=sum(s.get("resumed_from", 0) for s in stats),
            warnings=plan.warnings,
        )
