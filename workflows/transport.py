"""ComponentTransportWorkflow: copy OCM component versions between registries, sign, verify.

States (visible through the ``progress`` query): planning -> copying <name:version> (blobs in
parallel, bounded by ``parallel_blobs``; one activity per blob, resumable) -> finalising (sign,
upload descriptor, read back, verify at the target) -> done. Versions are handled references first,
so a component never appears at the target before the components it references.

No I/O here: activities do it all, named by string so the workflow sandbox never imports them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from definitions.ocm import (
    BlobCopyInput,
    BlobCopyResult,
    FinaliseInput,
    ManifestCopyInput,
    TransportedVersion,
    TransportInput,
    TransportPlan,
    TransportResult,
)

NON_RETRYABLE = [
    "SignatureInvalid",
    "DigestMismatch",
    "BadCredentials",
    "VersionConflict",
    "ComponentNotFound",
    "InvalidDescriptor",
    "UnknownNormalisation",
    "KeyInvalid",
    "SecretUnavailable",
]
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=NON_RETRYABLE,
)


@workflow.defn(name="ComponentTransportWorkflow")
class ComponentTransportWorkflow:
    def __init__(self) -> None:
        self._state = "planning"
        self._blobs_done = 0
        self._blobs_total = 0

    @workflow.query
    def progress(self) -> dict[str, object]:
        return {"state": self._state, "blobs_done": self._blobs_done, "blobs_total": self._blobs_total}

    @workflow.run
    async def run(self, inp: TransportInput) -> TransportResult:
        plan = await workflow.execute_activity(
            "ocm.plan_transport",
            inp,
            result_type=TransportPlan,
            start_to_close_timeout=timedelta(minutes=15),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        result = TransportResult()
        sem = asyncio.Semaphore(inp.parallel_blobs)
        self._blobs_total = sum(len(v.blobs) for v in plan.versions)

        async def copy_one(arg: BlobCopyInput) -> BlobCopyResult:
            async with sem:
                res = await workflow.execute_activity(
                    "ocm.copy_blob",
                    arg,
                    result_type=BlobCopyResult,
                    start_to_close_timeout=timedelta(hours=6),
                    heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
                    retry_policy=RETRY,
                )
                self._blobs_done += 1
                return res

        for vp in plan.versions:
            label = f"{vp.name}:{vp.version}"
            if vp.action == "skip":
                result.versions.append(
                    TransportedVersion(name=vp.name, version=vp.version, outcome="skipped", warnings=vp.warnings)
                )
                continue
            self._state = f"copying {label}"
            copies = await asyncio.gather(
                *[
                    copy_one(BlobCopyInput(source=inp.source, target=inp.target, blob=b, chunk_size=inp.chunk_size))
                    for b in vp.blobs
                ]
            )
            if vp.manifests:
                await workflow.execute_activity(
                    "ocm.copy_manifests",
                    ManifestCopyInput(source=inp.source, target=inp.target, manifests=vp.manifests),
                    result_type=list[str],
                    start_to_close_timeout=timedelta(minutes=10),
                    heartbeat_timeout=timedelta(minutes=2),
                    retry_policy=RETRY,
                )
            self._state = f"finalising {label}"
            tv = await workflow.execute_activity(
                "ocm.finalise_version",
                FinaliseInput(source=inp.source, target=inp.target, plan=vp, sign=inp.sign),
                result_type=TransportedVersion,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=RETRY,
            )
            tv.blobs_copied = sum(1 for c in copies if not c.skipped and not c.mounted)
            tv.bytes_sent = sum(c.bytes_sent for c in copies)
            tv.bytes_resumed = sum(c.resumed_from for c in copies)
            result.versions.append(tv)
        result.blobs_copied = sum(v.blobs_copied for v in result.versions)
        result.bytes_sent = sum(v.bytes_sent for v in result.versions)
        result.verified = inp.sign is not None and all(
            v.signature_digest or v.outcome == "skipped" for v in result.versions
        )
        self._state = "done"
        return result
