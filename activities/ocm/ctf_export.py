"""Export activities (task queue ``ocm``): component versions from a registry into a CTF archive.

- ``ocm.ctf_plan_export``: read the versions (recursively), verify the requested signatures and the
  resource digests, write the small pieces (manifests, configs, descriptor layers) into the staging
  directory, and list the big blobs.
- ``ocm.ctf_export_blob``: stream one blob into ``blobs/`` (resumes from the ``.part`` file an
  earlier attempt left: the bytes on disk are the progress).
- ``ocm.ctf_seal``: write ``artifact-index.json`` last (and pack the tar), so an archive is either
  complete or visibly unfinished.

Manifests travel byte for byte, so every digest (and every signature over the descriptor) in the
archive is the one the source registry served.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.ocm.activity_support import _operator_errors, _registry_url_for, client_for
from activities.ocm.ctf_format import (
    INDEX_FILE,
    ArchiveInvalid,
    PartialBlob,
    encode_index,
    have_blob,
    seal,
    staging_dir,
    write_small_blob,
)
from activities.ocm.layout import StoredVersion, check_local_blob, version_tag
from activities.ocm.oci import INDEX_TYPES, RegistryClient
from activities.ocm.transport import SourceWalker
from definitions.ocm import (
    ACCESS_LOCAL_BLOB,
    ACCESS_OCI_ARTIFACT,
    ACCESS_OCI_REGISTRY,
    ComponentVersionRef,
    TransferMode,
)
from definitions.ocm_ctf import (
    CtfArtifact,
    CtfBlob,
    CtfExportBlobInput,
    CtfExportInput,
    CtfExportPlan,
    CtfExportResult,
    CtfFormat,
    CtfSealInput,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _index_dicts(index: list[CtfArtifact]) -> list[dict[str, Any]]:
    out = []
    for a in index:
        d: dict[str, Any] = {"repository": a.repository}
        if a.tag:
            d["tag"] = a.tag
        d["digest"] = a.digest
        if a.media_type:
            d["mediaType"] = a.media_type
        out.append(d)
    return out


class _Exporter(SourceWalker):
    def __init__(self, inp: CtfExportInput, src: RegistryClient, staging: Path) -> None:
        super().__init__(inp, src)
        self.inp: CtfExportInput = inp
        self.staging = staging
        self.plan = CtfExportPlan(staging=str(staging))

    def add_blob(self, blob: CtfBlob) -> None:
        if not any(b.digest == blob.digest for b in self.plan.blobs):
            self.plan.blobs.append(blob)

    async def take(self, sv: StoredVersion, warnings: list[str]) -> None:
        name, version = sv.name, sv.version
        self.plan.warnings += warnings
        raw, media, digest = await self.src.get_manifest(sv.repo, version_tag(version))
        write_small_blob(self.staging, raw)
        manifest = json.loads(raw)
        config = manifest["config"]
        write_small_blob(self.staging, await self.src.get_blob(sv.repo, config["digest"]))
        layers = manifest.get("layers") or []
        if layers:  # the descriptor layer (small); local blobs go through ctf_export_blob
            write_small_blob(self.staging, await self.src.get_blob(sv.repo, layers[0]["digest"]))
        for lay in sv.blob_layers:
            self.add_blob(
                CtfBlob(repo=sv.repo, digest=lay["digest"], size=int(lay.get("size", 0)), label=f"{name}:{version}")
            )
        await self.check_resources(sv.descriptor, {lay["digest"] for lay in sv.blob_layers}, f"{name}:{version}")
        self.plan.index.append(
            CtfArtifact(
                repository=f"component-descriptors/{name}",
                tag=version_tag(version),
                digest=digest,
                media_type=media or OCI_MANIFEST,
            )
        )
        self.plan.versions.append(ComponentVersionRef(name=name, version=version))

    async def check_resources(self, desc: dict[str, Any], layers: set[str], label: str) -> None:
        for res in desc["component"].get("resources") or []:
            access, digest = res.get("access") or {}, res.get("digest") or {}
            rname = f"{label} resource {res.get('name')!r}"
            atype = access.get("type")
            if atype == ACCESS_LOCAL_BLOB:
                check_local_blob(access, digest, layers, rname, "is not a layer of the component version")
            elif atype in (ACCESS_OCI_ARTIFACT, ACCESS_OCI_REGISTRY):
                await self.export_artifact(access, digest, rname)

    async def export_artifact(self, access: dict[str, Any], digest: dict[str, Any], rname: str) -> None:
        ref, client, raw, media, mdigest = await self.read_artifact(access, digest, rname)
        if self.inp.mode != TransferMode.BY_VALUE:
            return
        registry = None if ref.host == self.src_base.host else _registry_url_for(ref.host, self.inp.source)
        await self.walk(client, registry, ref.repo, raw, media, rname)
        rel = self.relative_repo(ref)
        if not any(a.digest == mdigest and a.repository == rel for a in self.plan.index):
            self.plan.index.append(
                CtfArtifact(repository=rel, tag=ref.tag, digest=mdigest, media_type=media or OCI_MANIFEST)
            )

    async def walk(
        self, client: RegistryClient, registry: str | None, repo: str, raw: bytes, media: str, rname: str
    ) -> None:
        write_small_blob(self.staging, raw)
        doc = json.loads(raw)
        if (media or doc.get("mediaType", "")) in INDEX_TYPES or "manifests" in doc:
            for child in doc.get("manifests", []):
                craw, cmedia, _ = await client.get_manifest(repo, child["digest"])
                await self.walk(client, registry, repo, craw, cmedia, rname)
            return
        for blob in [doc.get("config"), *doc.get("layers", [])]:
            if blob:
                self.add_blob(
                    CtfBlob(
                        repo=repo,
                        digest=blob["digest"],
                        size=int(blob.get("size", 0)),
                        registry=registry,
                        label=f"{rname} (OCI artifact)",
                    )
                )


def _archive_complete(archive: str, tar: bool) -> bytes | None:
    """The index of an archive that is already sealed at this path, else None."""
    p = Path(archive)
    if tar and p.is_file():
        from activities.ocm.ctf_format import Archive

        with Archive(archive) as ar:
            return encode_index(ar.artifacts)
    if not tar and (p / INDEX_FILE).is_file():
        return encode_index(json.loads((p / INDEX_FILE).read_bytes()).get("artifacts") or [])
    return None


@activity.defn(name="ocm.ctf_plan_export")
@_operator_errors
async def plan_export(inp: CtfExportInput) -> CtfExportPlan:
    tar = inp.format == CtfFormat.TAR
    staging = staging_dir(inp.archive, tar)
    existing = _archive_complete(inp.archive, tar)
    if existing is None:
        (staging / "blobs").mkdir(parents=True, exist_ok=True)
    async with client_for(inp.source) as src:
        exp = _Exporter(inp, src, staging)
        try:
            if existing is not None:  # read-only pass: what would the archive hold?
                exp.staging = Path(inp.archive + ".check")
                (exp.staging / "blobs").mkdir(parents=True, exist_ok=True)
            for c in inp.components:
                await exp.visit(c.name, c.version, None)
        finally:
            await exp.close()
    if existing is not None:
        import shutil

        shutil.rmtree(exp.staging, ignore_errors=True)
        if existing != encode_index(_index_dicts(exp.plan.index)):
            raise ArchiveInvalid(
                f"{inp.archive} already exists with different content; remove it or choose another path"
            )
        exp.plan.complete = True
        exp.plan.blobs = []
    return exp.plan


@activity.defn(name="ocm.ctf_export_blob")
@_operator_errors
async def export_blob(inp: CtfExportBlobInput) -> int:
    """Bytes written by this attempt (0 when the blob was already complete)."""
    staging, blob = Path(inp.staging), inp.blob
    if have_blob(staging, blob.digest, blob.size):
        return 0
    part = PartialBlob.open(staging, blob.digest)
    written = 0
    async with client_for(inp.source, blob.registry) as c:
        if blob.size <= 0 or part.offset < blob.size:
            async with c.blob_stream(blob.repo, blob.digest, offset=part.offset) as resp:
                with part.path.open("ab") as f:
                    async for chunk in resp.aiter_bytes(1024 * 1024):
                        f.write(chunk)
                        part.hasher.update(chunk)
                        written += len(chunk)
                        activity.heartbeat({"offset": part.offset + written})
    part.commit()
    return written


@activity.defn(name="ocm.ctf_seal")
@_operator_errors
async def seal_export(inp: CtfSealInput) -> CtfExportResult:
    tar = inp.format == CtfFormat.TAR
    plan = inp.plan
    size = 0
    if not plan.complete:
        for b in plan.blobs:
            if not have_blob(Path(plan.staging), b.digest, b.size):
                raise ArchiveInvalid(f"cannot seal {inp.archive}: blob {b.digest} ({b.label}) is not complete")
        size = seal(Path(plan.staging), inp.archive, tar, _index_dicts(plan.index))
    return CtfExportResult(
        archive=inp.archive,
        format=inp.format,
        versions=plan.versions,
        artifacts=len(plan.index),
        blobs=len(plan.blobs),
        bytes_written=size,
        warnings=plan.warnings,
    )


ACTIVITIES = [plan_export, export_blob, seal_export]
