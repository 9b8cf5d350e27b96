"""Activities of the component transport (task queue ``ocm``).

- ``ocm.plan_transport``: read the source versions (recursively), verify their signatures and resource
  digests, look at the target, and list the work: blobs, OCI manifests, access rewrites.
- ``ocm.copy_blob``: stream one blob; heartbeats carry the upload URL and offset, so an attempt after
  a worker crash resumes the upload instead of starting over.
- ``ocm.copy_manifests``: OCI artifact manifests, byte for byte, children before parents.
- ``ocm.prepare_version`` and ``ocm.finalise_version`` (activities/ocm/finalise.py): sign and upload
  the descriptor while the blobs copy, then write the manifest, read it back and verify it there.
- ``ocm.verify_component``: the ``component.verify`` step: signatures and blob digests at a registry.

Secrets (registry passwords, signing keys) are resolved here from references; they never appear in
workflow arguments or results.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
from typing import Any

from temporalio import activity

from activities.bounded import loads_strict
from activities.ocm import normalise as norm
from activities.ocm import signing as sg
from activities.ocm.activity_support import (
    _kept_alive,
    _operator_errors,
    _registry_url_for,
    client_for,
    record_progress,
)
from activities.ocm.blobcopy import copy_blob, read_ahead_setting
from activities.ocm.errors import (
    DigestMismatch,
    SignatureInvalid,
    VersionConflict,
)
from activities.ocm.finalise import finalise_version, prepare_version
from activities.ocm.layout import (
    ImageRef,
    RepoBase,
    StoredVersion,
    check_local_blob,
    read_referenced_version,
    read_version,
    version_exists,
)
from activities.ocm.oci import (
    INDEX_TYPES,
    RegistryClient,
    RemoteDataRejected,
    UploadSession,
    copy_manifest,
)
from activities.secrets import resolve_secret
from definitions.ocm import (
    ACCESS_LOCAL_BLOB,
    ACCESS_NONE,
    ACCESS_OCI_ARTIFACT,
    ACCESS_OCI_REGISTRY,
    NORM_GENERIC_BLOB,
    NORM_OCI_ARTIFACT,
    BlobCopyInput,
    BlobCopyResult,
    BlobTask,
    ExistingPolicy,
    ManifestCopyInput,
    ManifestTask,
    TransferMode,
    TransportInput,
    TransportPlan,
    VerifyInput,
    VerifyResult,
    VerifySpec,
    VersionPlan,
)
from definitions.ocm_ctf import CtfExportInput


def _digest_hex(local_reference: str) -> str:
    # Component archives write "sha256.<hex>"; OCI layouts "sha256:<hex>".
    return local_reference.replace("sha256.", "sha256:", 1)


def _load_verify_material(spec: VerifySpec) -> tuple[Any, list[Any]]:
    key = sg.load_public_key(resolve_secret(spec.public_key_ref)) if spec.public_key_ref else None
    roots = sg.load_certificates(resolve_secret(spec.root_certs_ref)) if spec.root_certs_ref else []
    return key, roots


def verify_signatures(descriptor: dict[str, Any], specs: list[VerifySpec], *, required: bool, where: str) -> list[str]:
    """Verify each named signature; raise SignatureInvalid with an actionable reason. Returns warnings."""
    warnings: list[str] = []
    names = {s.get("name") for s in descriptor.get("signatures") or []}
    for spec in specs:
        if spec.name not in names:
            if required:
                raise SignatureInvalid(
                    f"{where}: signature {spec.name!r} is missing "
                    f"(present: {', '.join(sorted(map(str, names))) or 'none'})"
                )
            continue
        key, roots = _load_verify_material(spec)
        res = sg.verify_descriptor(
            descriptor, name=spec.name, public_key=key, roots=roots, issuer=spec.issuer, strict=spec.strict
        )
        if not res.valid:
            raise SignatureInvalid(f"{where}: {res.reason}")
        warnings += [f"{where}: {w}" for w in res.warnings]
    return warnings


# --- planning --------------------------------------------------------------------------------------


class SourceWalker:
    """Reads component versions from the source registry once each, references first (with
    ``recursive``), verifies the signatures the input names, and hands every version to :meth:`take`.
    Shared by the transport planner and the CTF exporter; artifacts on other hosts of the source
    registry are read with their own clients (closed by :meth:`close`)."""

    def __init__(self, inp: TransportInput | CtfExportInput, src: RegistryClient) -> None:
        self.inp, self.src = inp, src
        self.src_base = RepoBase.parse(inp.source.url)
        self.seen: set[tuple[str, str]] = set()
        self.extra_clients: dict[str, RegistryClient] = {}

    async def close(self) -> None:
        for c in self.extra_clients.values():
            await c.aclose()

    async def client_for_host(self, host: str) -> RegistryClient:
        if host == self.src_base.host:
            return self.src
        if host not in self.extra_clients:
            c = client_for(self.inp.source, _registry_url_for(host, self.inp.source))
            await c.__aenter__()
            self.extra_clients[host] = c
        return self.extra_clients[host]

    async def visit(self, name: str, version: str, referrer: str | None) -> None:
        if (name, version) in self.seen:
            return
        self.seen.add((name, version))
        activity.heartbeat(f"reading {name}:{version}")
        sv = await read_referenced_version(self.src, self.src_base, name, version, referrer)
        where = f"{name}:{version} at the source"
        warnings = verify_signatures(sv.descriptor, self.inp.verify, required=referrer is None, where=where)
        if self.inp.recursive:
            for ref in sv.descriptor["component"].get("componentReferences") or []:
                await self.visit(ref["componentName"], ref["version"], f"{name}:{version}")
        await self.take(sv, warnings)

    async def take(self, sv: StoredVersion, warnings: list[str]) -> None:
        raise NotImplementedError

    async def read_artifact(
        self, access: dict[str, Any], digest: dict[str, Any], rname: str
    ) -> tuple[ImageRef, RegistryClient, bytes, str, str]:
        """An ``ociArtifact`` resource's manifest (ref, client, raw, media type, digest), after checking
        that it is still the artifact the descriptor's digest records."""
        ref = ImageRef.parse(str(access.get("imageReference", "")))
        client = await self.client_for_host(ref.host)
        raw, media, mdigest = await client.get_manifest(ref.repo, ref.digest or ref.tag or "latest")
        if (
            digest.get("normalisationAlgorithm") == NORM_OCI_ARTIFACT
            and "sha256:" + str(digest.get("value", "")).lower() != mdigest
        ):
            raise DigestMismatch(
                f"{rname}: descriptor records artifact digest {digest.get('value')} but "
                f"{ref} resolves to {mdigest}; the artifact changed after signing"
            )
        return ref, client, raw, media, mdigest

    def relative_repo(self, ref: ImageRef) -> str:
        """An artifact's repository relative to the source's base (as is on another host)."""
        base = self.src_base
        if ref.host == base.host and base.prefix and ref.repo.startswith(base.prefix + "/"):
            return ref.repo[len(base.prefix) + 1 :]
        return ref.repo


class _Planner(SourceWalker):
    def __init__(self, inp: TransportInput, src: RegistryClient, dst: RegistryClient) -> None:
        super().__init__(inp, src)
        self.inp: TransportInput = inp
        self.dst = dst
        self.dst_base = RepoBase.parse(inp.target.url)
        self.order: list[VersionPlan] = []

    async def take(self, sv: StoredVersion, warnings: list[str]) -> None:
        plan = await self.plan_version(sv)
        plan.warnings = warnings + plan.warnings
        self.order.append(plan)

    async def plan_version(self, sv: StoredVersion) -> VersionPlan:
        plan = VersionPlan(name=sv.name, version=sv.version, action="copy", source_manifest_digest=sv.manifest_digest)
        dst_repo = self.dst_base.component_repo(sv.name)
        layers = {lay["digest"]: lay for lay in sv.blob_layers}
        by_value = self.inp.mode == TransferMode.BY_VALUE
        for i, res in enumerate(sv.descriptor["component"].get("resources") or []):
            access = res.get("access") or {}
            atype = access.get("type")
            rname = f"{sv.name}:{sv.version} resource {res.get('name')!r}"
            digest = res.get("digest") or {}
            if atype == ACCESS_LOCAL_BLOB:
                ref = check_local_blob(access, digest, set(layers), rname, "is not a layer of the component version")
                plan.blobs.append(
                    BlobTask(
                        src_repo=sv.repo,
                        dst_repo=dst_repo,
                        digest=ref,
                        size=int(layers[ref].get("size", 0)),
                        label=rname,
                        expected_sha256=ref.split(":", 1)[1],
                    )
                )
            elif atype in (ACCESS_OCI_ARTIFACT, ACCESS_OCI_REGISTRY):
                await self.plan_artifact(plan, i, access, digest, rname, by_value)
            elif atype not in ACCESS_NONE and by_value:
                plan.warnings.append(f"{rname}: access type {atype!r} is not copied by value (kept as is)")
        for lay in sv.blob_layers:  # layers no resource names still belong to the version
            if not any(b.digest == lay["digest"] for b in plan.blobs):
                plan.blobs.append(
                    BlobTask(
                        src_repo=sv.repo,
                        dst_repo=dst_repo,
                        digest=lay["digest"],
                        size=int(lay.get("size", 0)),
                        label=f"{sv.name}:{sv.version} layer",
                    )
                )
        await self.check_target(plan, sv)
        return plan

    async def plan_artifact(
        self,
        plan: VersionPlan,
        index: int,
        access: dict[str, Any],
        digest: dict[str, Any],
        rname: str,
        by_value: bool,
    ) -> None:
        ref, client, raw, media, mdigest = await self.read_artifact(access, digest, rname)
        if not by_value:
            return
        dst_repo = self.dst_base.repo(self.relative_repo(ref))
        registry_url = _registry_url_for(ref.host, self.inp.source)
        manifests: list[ManifestTask] = []
        await self.walk_manifest(plan, client, registry_url, ref.repo, dst_repo, raw, media, mdigest, manifests, rname)
        manifests[-1].tag = ref.tag
        plan.manifests += manifests
        pinned = ImageRef(self.dst_base.host, dst_repo, ref.tag, mdigest)
        new_access = {k: v for k, v in access.items() if k != "imageReference"}
        new_access["type"] = ACCESS_OCI_ARTIFACT
        new_access["imageReference"] = str(pinned)
        plan.access_rewrites[index] = new_access

    async def walk_manifest(
        self,
        plan: VersionPlan,
        client: RegistryClient,
        registry_url: str,
        repo: str,
        dst_repo: str,
        raw: bytes,
        media: str,
        mdigest: str,
        out: list[ManifestTask],
        rname: str,
    ) -> None:
        doc = loads_strict(raw, f"manifest {repo}@{mdigest}")
        if not isinstance(doc, dict):
            raise RemoteDataRejected(f"manifest {repo}@{mdigest}: a JSON {type(doc).__name__}, not an object")
        media = media or doc.get("mediaType", "")
        if media in INDEX_TYPES or "manifests" in doc:
            for child in doc.get("manifests", []):
                craw, cmedia, cdigest = await client.get_manifest(repo, child["digest"])
                await self.walk_manifest(plan, client, registry_url, repo, dst_repo, craw, cmedia, cdigest, out, rname)
        else:
            for blob in [doc.get("config"), *doc.get("layers", [])]:
                if blob and not any(b.digest == blob["digest"] and b.dst_repo == dst_repo for b in plan.blobs):
                    other = registry_url if registry_url != self.src_base.registry_url else None
                    plan.blobs.append(
                        BlobTask(
                            src_repo=repo,
                            dst_repo=dst_repo,
                            digest=blob["digest"],
                            size=int(blob.get("size", 0)),
                            src_registry=other,
                            label=f"{rname} (OCI artifact)",
                        )
                    )
        out.append(ManifestTask(src_registry=registry_url, src_repo=repo, dst_repo=dst_repo, digest=mdigest))

    async def check_target(self, plan: VersionPlan, sv: StoredVersion) -> None:
        if await version_exists(self.dst, self.dst_base, sv.name, sv.version) is None:
            return
        if self.inp.existing == ExistingPolicy.FAIL:
            raise VersionConflict(f"target {self.dst_base.host} already holds {sv.name}:{sv.version} (existing=fail)")
        tv = await read_version(self.dst, self.dst_base, sv.name, sv.version)
        want = norm.descriptor_digest(sv.descriptor)
        have = norm.descriptor_digest(tv.descriptor)
        if want == have:
            names = {s.get("name") for s in tv.descriptor.get("signatures") or []}
            if self.inp.sign is None or self.inp.sign.name in names:
                plan.action, plan.blobs, plan.manifests = "skip", [], []
            else:
                plan.action = "sign"
            return
        if self.inp.existing != ExistingPolicy.OVERWRITE:
            raise VersionConflict(
                f"target {self.dst_base.host} already holds {sv.name}:{sv.version} with different content "
                f"(normalised digest {have}, source {want}); use existing=overwrite to replace it"
            )
        plan.overwrite = True


@activity.defn(name="ocm.plan_transport")
@_operator_errors
@_kept_alive
async def plan_transport(inp: TransportInput) -> TransportPlan:
    if inp.sign is not None:
        # Fail before copying gigabytes: the signing settings and key must be usable.
        norm.check_algorithm(inp.sign.normalisation)
        if inp.sign.algorithm not in sg.ALGORITHMS:
            raise SignatureInvalid(
                f"unknown signature algorithm {inp.sign.algorithm!r}; supported: {', '.join(sg.ALGORITHMS)}"
            )
        sg.load_private_key(resolve_secret(inp.sign.private_key_ref))
    async with client_for(inp.source) as src, client_for(inp.target) as dst:
        planner = _Planner(inp, src, dst)
        try:
            for c in inp.components:
                await planner.visit(c.name, c.version, None)
        finally:
            await planner.close()
    return TransportPlan(versions=planner.order)


# --- copying ---------------------------------------------------------------------------------------


class ProgressRecorder:
    """Records the newest upload state in the background, so the data path never waits for an RPC.

    One RPC in flight at a time, always carrying the newest state (older ones are dropped, never sent
    after a newer one), so the recorded offset only grows. It also re-records the state every
    ``keepalive`` seconds while the copy waits (a throttling registry's Retry-After), so the activity
    does not time out while it is making slow progress. A failed RPC is raised to the copy at its next
    update.
    """

    def __init__(self, keepalive: float = 10.0) -> None:
        self.keepalive = keepalive
        self._latest: dict[str, Any] | None = None
        self._recorded: dict[str, Any] | None = None
        self._changed = asyncio.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.rpcs = 0

    def update(self, details: dict[str, Any]) -> None:
        if self._error is not None:
            raise self._error
        self._latest = details
        self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.keepalive)
            if self._closing:
                # Python 3.11's wait_for drops a cancel that arrives as the event is set (an update
                # right before aclose, e.g. a blob whose last chunk was its closing PUT): without
                # this check the loop would run on and aclose would wait for ever.
                return
            self._changed.clear()
            details = self._latest
            if details is None:
                continue
            try:
                # The SDK's own (throttled) heartbeat too, before the exact record: the SDK times an
                # activity out locally when it saw no heartbeat for the heartbeat timeout (a blob
                # that takes longer than that was cancelled mid-copy), and handing it the newest
                # details first means its delayed send never carries older ones than the RPC.
                if activity.in_activity():
                    activity.heartbeat(details)
                await record_progress(details)
            except Exception as exc:
                self._error = exc
                return
            self._recorded = details
            self.rpcs += 1

    async def aclose(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@activity.defn(name="ocm.copy_blob")
@_operator_errors
async def copy_blob_activity(inp: BlobCopyInput) -> BlobCopyResult:
    info = activity.info()
    session = None
    if info.heartbeat_details:
        last = info.heartbeat_details[-1]
        if isinstance(last, dict) and last.get("location"):
            session = UploadSession(str(last["location"]), int(last.get("offset", 0)))
    blob = inp.blob
    if blob.expected_sha256 and blob.digest != "sha256:" + blob.expected_sha256:
        raise DigestMismatch(f"{blob.label}: blob {blob.digest} does not match its resource digest")
    timeout = info.heartbeat_timeout.total_seconds() if info.heartbeat_timeout else 30.0
    recorder = ProgressRecorder(keepalive=max(0.5, min(10.0, timeout / 3)))

    def progress(s: UploadSession, _sent: int) -> None:
        recorder.update(s.as_dict())

    try:
        async with client_for(inp.source, blob.src_registry) as src, client_for(inp.target) as dst:
            stats = await copy_blob(
                src,
                blob.src_repo,
                dst,
                blob.dst_repo,
                blob.digest,
                chunk_size=inp.chunk_size,
                session=session,
                progress=progress,
                read_ahead=read_ahead_setting(),
            )
    finally:
        await recorder.aclose()
    # The copy's own figures (CopyStats; the result leaves out its chunk count) and the attempt.
    return BlobCopyResult.model_validate({**dataclasses.asdict(stats), "attempt": info.attempt})


@activity.defn(name="ocm.copy_manifests")
@_operator_errors
@_kept_alive
async def copy_manifests(inp: ManifestCopyInput) -> list[str]:
    done = []
    async with client_for(inp.target) as dst:
        for m in inp.manifests:
            async with client_for(inp.source, m.src_registry) as src:
                digest, _, _ = await copy_manifest(src, m.src_repo, dst, m.dst_repo, m.digest, m.tag)
                if m.tag:  # also reachable by digest (a tag PUT already stores it; this is a cheap HEAD)
                    await dst.head_manifest(m.dst_repo, digest)
            done.append(digest)
            activity.heartbeat(len(done))
    return done


# --- verification step ------------------------------------------------------------------------------


@activity.defn(name="ocm.verify_component")
@_operator_errors
@_kept_alive
async def verify_component(inp: VerifyInput) -> VerifyResult:
    base = RepoBase.parse(inp.repository.url)
    async with client_for(inp.repository) as client:
        sv = await read_version(client, base, inp.component.name, inp.component.version)
        where = f"{sv.name}:{sv.version} at {base.host}"
        warnings = verify_signatures(sv.descriptor, inp.verify, required=True, where=where)
        if inp.check_blobs:
            for res in sv.descriptor["component"].get("resources") or []:
                access, digest = res.get("access") or {}, res.get("digest") or {}
                rname = f"{where} resource {res.get('name')!r}"
                if (
                    access.get("type") == ACCESS_LOCAL_BLOB
                    and digest.get("normalisationAlgorithm") == NORM_GENERIC_BLOB
                ):
                    h = hashlib.sha256()
                    async with client.blob_stream(sv.repo, _digest_hex(access["localReference"])) as resp:
                        async for chunk in resp.aiter_bytes(1024 * 1024):
                            h.update(chunk)
                            activity.heartbeat()
                    if h.hexdigest() != str(digest.get("value", "")).lower():
                        raise DigestMismatch(
                            f"{rname}: blob content is sha256:{h.hexdigest()}, descriptor records {digest.get('value')}"
                        )
                elif (
                    access.get("type") in (ACCESS_OCI_ARTIFACT, ACCESS_OCI_REGISTRY)
                    and digest.get("normalisationAlgorithm") == NORM_OCI_ARTIFACT
                ):
                    ref = ImageRef.parse(access["imageReference"])
                    if ref.host != base.host:
                        warnings.append(f"{rname}: artifact on another registry ({ref.host}) not checked")
                        continue
                    found = await client.head_manifest(ref.repo, ref.digest or ref.tag or "latest")
                    if found != "sha256:" + str(digest.get("value", "")).lower():
                        raise DigestMismatch(
                            f"{rname}: artifact {ref} is {found}, descriptor records {digest.get('value')}"
                        )
    digest_value = norm.descriptor_digest(sv.descriptor)
    return VerifyResult(name=sv.name, version=sv.version, valid=True, digest=digest_value, warnings=warnings)


ACTIVITIES = [plan_transport, copy_blob_activity, copy_manifests, prepare_version, finalise_version, verify_component]
