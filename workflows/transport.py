"""ComponentTransportWorkflow: copy OCM component versions between registries, sign, verify.

States (visible through the ``progress`` query): planning -> copying <name:version> (the blobs of
every version in parallel, largest first, bounded by ``parallel_blobs``; one activity per blob,
resumable; meanwhile each version's descriptor is signed and uploaded, ``ocm.prepare_version``) ->
finalising (write the manifest, read back, verify at the target) -> done. Versions are handled references first,
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
    PreparedVersion,
    TransportedVersion,
    TransportInput,
    TransportPlan,
    TransportResult,
    VersionPlan,
)
from workflows.activity_options import HEARTBEAT_TIMEOUT, MAX_HEARTBEAT_TIMEOUT

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
#: Patch id: all versions' blobs are copied at once, largest first (before: version by version).
PATCH_OVERLAP = "transport-blobs-overlap-largest-first"
#: Patch id: a version's OCI manifests are copied as soon as the blobs of their repositories are at the
#: target, while its other (large) blobs still copy (before: after all of the version's blobs).
PATCH_EARLY_MANIFESTS = "transport-manifests-before-large-blobs"
#: Patch id: each version's descriptor is signed and uploaded (``ocm.prepare_version``) while its blobs
#: copy, so finalising after the largest blob only writes the manifest and verifies (before: all of it).
PATCH_PREPARE = "transport-prepare-while-copying"
#: Versions prepared at once (each a few small requests; a transport of hundreds of versions must not
#: open hundreds of registry connections at the start).
PREPARE_AT_ONCE = 4
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=NON_RETRYABLE,
)


async def _already(copy: asyncio.Task[BlobCopyResult]) -> BlobCopyResult:
    """The same blob into the same repository for a second version: wait for the first copy."""
    res = await asyncio.shield(copy)
    return BlobCopyResult(digest=res.digest, size=res.size, skipped=True)


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
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
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
                    heartbeat_timeout=min(timedelta(seconds=inp.heartbeat_timeout_s), MAX_HEARTBEAT_TIMEOUT),
                    retry_policy=RETRY,
                )
                self._blobs_done += 1
                return res

        def blob_input(vp: VersionPlan, j: int) -> BlobCopyInput:
            return BlobCopyInput(source=inp.source, target=inp.target, blob=vp.blobs[j], chunk_size=inp.chunk_size)

        # Patched: every version's blobs start at once, largest first, so the big blob is on the wire
        # from the start and the small ones, the references' finalising and the manifests overlap it.
        # Histories recorded before copied version by version, in plan order.
        overlap = workflow.patched(PATCH_OVERLAP)
        started: dict[int, list[asyncio.Task[BlobCopyResult]]] = {}
        if overlap:
            jobs = [(i, j) for i, vp in enumerate(plan.versions) if vp.action != "skip" for j in range(len(vp.blobs))]
            jobs.sort(key=lambda ij: -plan.versions[ij[0]].blobs[ij[1]].size)  # stable: plan order among equals
            first: dict[tuple[str, str], asyncio.Task[BlobCopyResult]] = {}
            tasks: dict[tuple[int, int], asyncio.Task[BlobCopyResult]] = {}
            for i, j in jobs:
                b = plan.versions[i].blobs[j]
                if (b.dst_repo, b.digest) in first:  # e.g. one image referenced by two versions: copy once
                    tasks[(i, j)] = asyncio.create_task(_already(first[(b.dst_repo, b.digest)]))
                else:
                    tasks[(i, j)] = first[(b.dst_repo, b.digest)] = asyncio.create_task(
                        copy_one(blob_input(plan.versions[i], j))
                    )
            for (i, _j), task in sorted(tasks.items()):
                started.setdefault(i, []).append(task)
        # Patched: the manifests wait only for the blobs of their own repositories (an OCI image's
        # config and layers), so they are at the target before the version's large local blob is.
        manifests: dict[int, asyncio.Task[None]] = {}
        if overlap and workflow.patched(PATCH_EARLY_MANIFESTS):
            for i, vp in enumerate(plan.versions):
                if vp.action != "skip" and vp.manifests:
                    repos = {m.dst_repo for m in vp.manifests}
                    needed = [t for b, t in zip(vp.blobs, started.get(i, []), strict=True) if b.dst_repo in repos]
                    manifests[i] = asyncio.create_task(self._copy_manifests(inp, vp, needed))
        # Patched: descriptors signed and uploaded while the blobs copy (references first, bounded).
        prepared: dict[int, asyncio.Task[PreparedVersion]] = {}
        if workflow.patched(PATCH_PREPARE):
            at_once = asyncio.Semaphore(PREPARE_AT_ONCE)
            for i, vp in enumerate(plan.versions):
                if vp.action != "skip":
                    prepared[i] = asyncio.create_task(self._prepare(inp, vp, at_once))
        try:
            for i, vp in enumerate(plan.versions):
                label = f"{vp.name}:{vp.version}"
                if vp.action == "skip":
                    result.versions.append(
                        TransportedVersion(name=vp.name, version=vp.version, outcome="skipped", warnings=vp.warnings)
                    )
                    continue
                self._state = f"copying {label}"
                if overlap:
                    copies = list(await asyncio.gather(*started.get(i, [])))
                else:
                    copies = list(await asyncio.gather(*[copy_one(blob_input(vp, j)) for j in range(len(vp.blobs))]))
                await self._finish_version(inp, vp, copies, result, manifests.get(i), prepared.get(i))
        finally:
            for t in [*(t for ts in started.values() for t in ts), *manifests.values(), *prepared.values()]:
                if not t.done():
                    t.cancel()
                elif not t.cancelled():
                    t.exception()  # retrieved: a failed blob's error is raised by the version that needs it
        result.blobs_copied = sum(v.blobs_copied for v in result.versions)
        result.bytes_sent = sum(v.bytes_sent for v in result.versions)
        result.verified = inp.sign is not None and all(
            v.signature_digest or v.outcome == "skipped" for v in result.versions
        )
        self._state = "done"
        return result

    async def _copy_manifests(
        self, inp: TransportInput, vp: VersionPlan, blobs: list[asyncio.Task[BlobCopyResult]]
    ) -> None:
        """The version's OCI manifests, once ``blobs`` (the blobs they reference) are at the target."""
        if blobs:
            await asyncio.gather(*(asyncio.shield(b) for b in blobs))
        await workflow.execute_activity(
            "ocm.copy_manifests",
            ManifestCopyInput(source=inp.source, target=inp.target, manifests=vp.manifests),
            result_type=list[str],
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RETRY,
        )

    async def _prepare(self, inp: TransportInput, vp: VersionPlan, at_once: asyncio.Semaphore) -> PreparedVersion:
        """The version's signed descriptor and config at the target, ahead of its manifest."""
        async with at_once:
            return await workflow.execute_activity(
                "ocm.prepare_version",
                FinaliseInput(source=inp.source, target=inp.target, plan=vp, sign=inp.sign),
                result_type=PreparedVersion,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=RETRY,
            )

    async def _finish_version(
        self,
        inp: TransportInput,
        vp: VersionPlan,
        copies: list[BlobCopyResult],
        result: TransportResult,
        manifests: asyncio.Task[None] | None = None,
        prepared: asyncio.Task[PreparedVersion] | None = None,
    ) -> None:
        """Manifests (unless ``manifests`` copies them already), then publish + verify one version
        whose blobs are all at the target (signing it first unless ``prepared`` did)."""
        label = f"{vp.name}:{vp.version}"
        if manifests is not None:
            await manifests
        elif vp.manifests:
            await self._copy_manifests(inp, vp, [])
        ready = await prepared if prepared is not None else None
        self._state = f"finalising {label}"
        tv = await workflow.execute_activity(
            "ocm.finalise_version",
            FinaliseInput(source=inp.source, target=inp.target, plan=vp, sign=inp.sign, prepared=ready),
            result_type=TransportedVersion,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RETRY,
        )
        tv.blobs_copied = sum(1 for c in copies if not c.skipped and not c.mounted)
        tv.bytes_sent = sum(c.bytes_sent for c in copies)
        tv.bytes_resumed = sum(c.resumed_from for c in copies)
        result.versions.append(tv)
