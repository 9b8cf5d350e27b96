"""Import activities (task queue ``ocm``): a CTF archive into a registry.

- ``ocm.ctf_plan_import``: open the archive (directory or tar), refuse an unknown index version,
  hash *every* blob the selected versions need (a truncated or tampered archive fails here, before
  the target sees a byte), verify the requested signatures and resource digests, look at the target.
- ``ocm.ctf_import_blob``: stream one blob into a chunked upload; the upload URL and offset are
  recorded after each chunk (as for registry transfers), so a new attempt resumes the upload.
- ``ocm.ctf_finish_import``: OCI artifact manifests (children first), then each component version
  (referenced ones first), then read every version back from the target and verify its signatures.

Until the finish step, the target holds only blobs no tag points at: nothing is half-imported.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from temporalio import activity

from activities.ocm import normalise as norm
from activities.ocm.activity_support import _operator_errors, client_for, record_progress
from activities.ocm.ctf_format import Archive, ArchiveInvalid
from activities.ocm.errors import ComponentNotFound, DigestMismatch, InvalidDescriptor, OCMError, VersionConflict
from activities.ocm.layout import (
    DESCRIPTOR_TAR,
    ImageRef,
    RepoBase,
    check_local_blob,
    descriptor_from_layer,
    read_version,
    version_exists,
    version_tag,
    write_version,
)
from activities.ocm.oci import INDEX_TYPES, UploadSession
from activities.ocm.transport import verify_signatures
from definitions.ocm import (
    ACCESS_LOCAL_BLOB,
    ACCESS_OCI_ARTIFACT,
    ACCESS_OCI_REGISTRY,
    ExistingPolicy,
)
from definitions.ocm_ctf import (
    CtfArtifact,
    CtfBlob,
    CtfFinishInput,
    CtfImportBlobInput,
    CtfImportedVersion,
    CtfImportInput,
    CtfImportPlan,
    CtfImportVersion,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
COMPONENTS = "component-descriptors/"


def _untag(tag: str) -> str:
    return tag.replace(".build-", "+")


def read_archive_version(ar: Archive, digest: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, descriptor) of the component version whose manifest is ``digest``."""
    try:
        manifest = json.loads(ar.read_blob(digest))
        config = json.loads(ar.read_blob(manifest["config"]["digest"]))
        layer = config.get("componentDescriptorLayer") or manifest["layers"][0]
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidDescriptor(f"{ar.path}: manifest {digest} is not an OCM component version ({exc})") from None
    text = descriptor_from_layer(ar.read_blob(layer["digest"]), layer.get("mediaType", DESCRIPTOR_TAR))
    return manifest, norm.load_descriptor_data(text)


class _Importer:
    def __init__(self, inp: CtfImportInput, ar: Archive) -> None:
        self.inp, self.ar = inp, ar
        self.dst_base = RepoBase.parse(inp.target.url)
        self.plan = CtfImportPlan()
        self.versions: dict[tuple[str, str], CtfArtifact] = {}
        self.artifacts: dict[str, CtfArtifact] = {}  # manifest digest -> entry (OCI artifacts)
        for a in ar.artifacts:
            entry = CtfArtifact(
                repository=a["repository"], tag=a.get("tag"), digest=a["digest"], media_type=a.get("mediaType", "")
            )
            if entry.repository.startswith(COMPONENTS):
                if not entry.tag:
                    raise ArchiveInvalid(f"{ar.path}: component entry {entry.repository} has no version tag")
                self.versions[(entry.repository[len(COMPONENTS) :], _untag(entry.tag))] = entry
            else:
                self.artifacts[entry.digest] = entry
        self.done: set[tuple[str, str]] = set()
        self.verified: set[str] = set()

    def add_blob(self, repo: str, digest: str, size: int, label: str) -> None:
        if digest not in self.verified:
            self.ar.verify_blob(digest, size)
            self.verified.add(digest)
            activity.heartbeat(f"checked {digest}")
        if not any(b.digest == digest and b.repo == repo for b in self.plan.blobs):
            self.plan.blobs.append(CtfBlob(repo=repo, digest=digest, size=size, label=label))

    async def visit(self, name: str, version: str, referrer: str | None, dst: Any) -> None:
        if (name, version) in self.done:
            return
        self.done.add((name, version))
        entry = self.versions.get((name, version))
        if entry is None:
            what = f"{referrer} references {name}:{version}, which" if referrer else f"{name}:{version}"
            raise ComponentNotFound(f"{what} is not in the archive {self.ar.path}")
        manifest, desc = read_archive_version(self.ar, entry.digest)
        comp = desc["component"]
        if comp.get("name") != name or comp.get("version") != version:
            raise InvalidDescriptor(f"{self.ar.path}: {entry.repository}:{entry.tag} holds {comp.get('name')}")
        label = f"{name}:{version}"
        self.plan.warnings += verify_signatures(
            desc, self.inp.verify, required=referrer is None, where=f"{label} in the archive"
        )
        for ref in comp.get("componentReferences") or []:
            await self.visit(ref["componentName"], ref["version"], label, dst)
        repo = self.dst_base.component_repo(name)
        iv = CtfImportVersion(name=name, version=version, manifest_digest=entry.digest, top=referrer is None)
        for blob in [manifest["config"], *(manifest.get("layers") or [])]:
            self.add_blob(repo, blob["digest"], int(blob.get("size", -1)), label)
        layers = {lay["digest"] for lay in manifest.get("layers") or []}
        for i, res in enumerate(comp.get("resources") or []):
            self.check_resource(iv, i, res, layers, f"{label} resource {res.get('name')!r}")
        await self.check_target(iv, desc, dst)
        self.plan.versions.append(iv)

    def check_resource(self, iv: CtfImportVersion, i: int, res: dict[str, Any], layers: set[str], rname: str) -> None:
        access, digest = res.get("access") or {}, res.get("digest") or {}
        if access.get("type") == ACCESS_LOCAL_BLOB:
            check_local_blob(access, digest, layers, rname, "is not in the archive")
        elif access.get("type") in (ACCESS_OCI_ARTIFACT, ACCESS_OCI_REGISTRY):
            img = ImageRef.parse(str(access.get("imageReference", "")))
            want = img.digest or ("sha256:" + str(digest.get("value", "")).lower() if digest.get("value") else "")
            art = self.artifacts.get(want)
            if art is None:
                self.plan.warnings.append(f"{rname}: artifact {img} is not in the archive; access kept as is")
                return
            self.add_artifact(art.repository, art.digest, rname)
            if not any(a.digest == art.digest and a.tag == art.tag for a in self.plan.artifacts if a.tag):
                self.plan.artifacts.append(art)
            dst_repo = self.dst_base.repo(art.repository)
            new = {k: str(v) for k, v in access.items() if k != "imageReference"}
            new["type"] = ACCESS_OCI_ARTIFACT
            new["imageReference"] = str(ImageRef(self.dst_base.host, dst_repo, art.tag, art.digest))
            iv.access_rewrites[i] = new

    def add_artifact(self, repository: str, digest: str, rname: str) -> None:
        """Check a manifest and everything under it; children are queued before their parent."""
        doc = json.loads(self.ar.read_blob(digest))
        dst_repo = self.dst_base.repo(repository)
        if doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
            for child in doc.get("manifests", []):
                self.add_artifact(repository, child["digest"], rname)
        else:
            for blob in [doc.get("config"), *doc.get("layers", [])]:
                if blob:
                    self.add_blob(dst_repo, blob["digest"], int(blob.get("size", -1)), f"{rname} (OCI artifact)")
        if not any(a.digest == digest and a.repository == repository for a in self.plan.artifacts):
            self.plan.artifacts.append(
                CtfArtifact(repository=repository, digest=digest, media_type=doc.get("mediaType", ""))
            )

    async def check_target(self, iv: CtfImportVersion, desc: dict[str, Any], dst: Any) -> None:
        if await version_exists(dst, self.dst_base, iv.name, iv.version) is None:
            return
        if self.inp.existing == ExistingPolicy.FAIL:
            raise VersionConflict(f"target already holds {iv.name}:{iv.version} (existing=fail)")
        have = norm.descriptor_digest((await read_version(dst, self.dst_base, iv.name, iv.version)).descriptor)
        if have == norm.descriptor_digest(desc):
            iv.action = "skip"
        elif self.inp.existing != ExistingPolicy.OVERWRITE:
            raise VersionConflict(
                f"target already holds {iv.name}:{iv.version} with different content; use existing=overwrite"
            )


@activity.defn(name="ocm.ctf_plan_import")
@_operator_errors
async def plan_import(inp: CtfImportInput) -> CtfImportPlan:
    with Archive(inp.archive) as ar:
        imp = _Importer(inp, ar)
        wanted = [(c.name, c.version) for c in inp.components] or sorted(imp.versions)
        if not wanted:
            raise ArchiveInvalid(f"{inp.archive} holds no component versions")
        async with client_for(inp.target) as dst:
            for name, version in wanted:
                await imp.visit(name, version, None, dst)
    # Blobs of skipped versions need no upload; artifacts of skipped versions neither.
    if all(v.action == "skip" for v in imp.plan.versions):
        imp.plan.blobs, imp.plan.artifacts = [], []
    return imp.plan


@activity.defn(name="ocm.ctf_import_blob")
@_operator_errors
async def import_blob(inp: CtfImportBlobInput) -> dict[str, int]:
    """Returns {"sent": bytes, "resumed_from": offset, "skipped": 0|1}."""
    info = activity.info()
    blob = inp.blob
    session = None
    if info.heartbeat_details:
        last = info.heartbeat_details[-1]
        if isinstance(last, dict) and last.get("location"):
            session = UploadSession(str(last["location"]), int(last.get("offset", 0)))
    async with client_for(inp.target) as dst:
        if await dst.blob_size(blob.repo, blob.digest) is not None:
            if session is not None:
                await dst.cancel_upload(session.location, blob.repo)
            return {"sent": 0, "resumed_from": 0, "skipped": 1}
        if session is not None:
            offset = await dst.upload_offset(session.location, blob.repo)
            session = None if offset is None else UploadSession(session.location, offset)
        if session is None:
            session = UploadSession(await dst.start_upload(blob.repo), 0)
        resumed, sent, pos = session.offset, 0, 0
        h = hashlib.sha256()
        buf: list[bytes] = []
        buffered = 0
        with Archive(inp.archive) as ar, ar.open_blob(blob.digest) as f:
            while piece := f.read(min(inp.chunk_size, 1024 * 1024)):
                h.update(piece)
                start, pos = pos, pos + len(piece)
                if pos <= session.offset:
                    continue
                if start < session.offset:
                    piece = piece[session.offset - start :]
                buf.append(piece)
                buffered += len(piece)
                if buffered >= inp.chunk_size:
                    session.location = await dst.upload_chunk(session.location, blob.repo, buf, session.offset)
                    session.offset += buffered
                    sent += buffered
                    buf, buffered = [], 0
                    await record_progress(session.as_dict())
        if "sha256:" + h.hexdigest() != blob.digest:
            await dst.cancel_upload(session.location, blob.repo)
            raise DigestMismatch(f"{inp.archive}: blob {blob.digest} changed since it was checked; tampered")
        await dst.finish_upload(session.location, blob.repo, blob.digest, buf)
    return {"sent": sent + buffered, "resumed_from": resumed, "skipped": 0}


@activity.defn(name="ocm.ctf_finish_import")
@_operator_errors
async def finish_import(inp: CtfFinishInput) -> list[CtfImportedVersion]:
    dst_base = RepoBase.parse(inp.target.url)
    out: list[CtfImportedVersion] = []
    with Archive(inp.archive) as ar:
        async with client_for(inp.target) as dst:
            for art in inp.plan.artifacts:
                data = ar.read_blob(art.digest)
                media = art.media_type or json.loads(data).get("mediaType") or OCI_MANIFEST
                repo = dst_base.repo(art.repository)
                if await dst.head_manifest(repo, art.tag or art.digest) != art.digest:
                    await dst.put_manifest(repo, art.tag or art.digest, data, media)
            for v in inp.plan.versions:
                if v.action != "skip":
                    await _write(ar, dst, dst_base, v)
                activity.heartbeat(f"{v.name}:{v.version}")
                tv = await read_version(dst, dst_base, v.name, v.version)
                names: list[str] = []
                if inp.verify:
                    where = f"{v.name}:{v.version} at the target"
                    verify_signatures(tv.descriptor, inp.verify, required=v.top, where=where)
                    present = {s.get("name") for s in tv.descriptor.get("signatures") or []}
                    names = [s.name for s in inp.verify if s.name in present]
                for lay in tv.blob_layers:
                    if await dst.blob_size(tv.repo, lay["digest"]) is None:
                        raise OCMError(f"{v.name}:{v.version}: local blob {lay['digest']} is missing at the target")
                out.append(
                    CtfImportedVersion(
                        name=v.name,
                        version=v.version,
                        outcome="skipped" if v.action == "skip" else "imported",
                        manifest_digest=tv.manifest_digest,
                        descriptor_digest=norm.descriptor_digest(tv.descriptor),
                        signatures_verified=names,
                    )
                )
    return out


async def _write(ar: Archive, dst: Any, dst_base: RepoBase, v: CtfImportVersion) -> None:
    repo = dst_base.component_repo(v.name)
    if not v.access_rewrites:  # byte for byte: the manifest digest stays the archive's
        await dst.put_manifest(repo, version_tag(v.version), ar.read_blob(v.manifest_digest), OCI_MANIFEST)
        return
    manifest, desc = read_archive_version(ar, v.manifest_digest)
    resources = desc["component"].get("resources") or []
    for index, access in v.access_rewrites.items():
        resources[int(index)]["access"] = access
    layers = manifest.get("layers") or []
    await write_version(dst, dst_base, desc, layers[1:])


ACTIVITIES = [plan_import, import_blob, finish_import]
