"""Activities that publish a transported version at the target (task queue ``ocm``).

- ``ocm.prepare_version``: rewrite accesses, sign, upload the descriptor layer and config. Runs while
  the version's blobs still copy: nothing refers to these two blobs yet, so the version does not
  appear at the target early, and the signing is off the transport's critical path.
- ``ocm.finalise_version``: write the manifest (after every local blob is at the target), read the
  version back and verify it there. Given no :class:`PreparedVersion` (workflows started before the
  prepare step existed), it signs and uploads first, as it always did.

Both are idempotent across attempts: the signed descriptor is recorded in a heartbeat before anything
is written, so an attempt after a crash or a worker shutdown writes the very same bytes (uploads of
present blobs are skipped); a manifest over the same blobs is the same manifest.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import activity

from activities.liveness import keep_alive
from activities.ocm import signing as sg
from activities.ocm.activity_support import _operator_errors, client_for, record_progress
from activities.ocm.errors import OCMError, SignatureInvalid, VersionConflict
from activities.ocm.layout import (
    ImageRef,
    RepoBase,
    StoredVersion,
    put_version_manifest,
    read_version,
    upload_descriptor,
    write_version,
)
from activities.ocm.oci import RegistryClient
from activities.secrets import resolve_secret
from definitions.ocm import FinaliseInput, PreparedVersion, SigningSpec, TransportedVersion, VersionPlan

T = TypeVar("T")


def _target_descriptor(source: dict[str, Any], plan: VersionPlan, src_base: RepoBase) -> dict[str, Any]:
    desc = copy.deepcopy(source)
    resources = desc["component"].get("resources") or []
    for index, access in plan.access_rewrites.items():
        resources[int(index)]["access"] = access
    ctx = {
        "type": "OCIRegistry",
        "baseUrl": "/".join(p for p in (src_base.host, src_base.prefix) if p),
        "componentNameMapping": "urlPath",
    }
    contexts = desc["component"].setdefault("repositoryContexts", [])
    if not contexts or contexts[-1] != ctx:
        contexts.append(ctx)
    return desc


def _previous_details() -> Any:
    """What the attempt before this one recorded last (``None`` on a first attempt)."""
    details = activity.info().heartbeat_details if activity.in_activity() else []
    return details[-1] if details else None


@activity.defn(name="ocm.prepare_version")
@_operator_errors
async def prepare_version(inp: FinaliseInput) -> PreparedVersion:
    """Sign the version's target descriptor and upload it with its config, ahead of the manifest."""
    previous = _previous_details()
    progress: dict[str, Any] = {"details": previous if isinstance(previous, dict) else None}
    async with keep_alive(lambda: progress["details"]):
        async with client_for(inp.source) as src, client_for(inp.target) as dst:
            sv, desc = await _signed_descriptor(inp, src, previous, progress)
            layer, config = await upload_descriptor(dst, RepoBase.parse(inp.target.url), desc)
    return PreparedVersion(descriptor_layer=layer, config=config, blob_layers=sv.blob_layers)


@activity.defn(name="ocm.finalise_version")
@_operator_errors
async def finalise_version(inp: FinaliseInput) -> TransportedVersion:
    """Write one version at the target (signing it first unless it was prepared), then read it back
    and verify it there."""
    previous = _previous_details()
    progress: dict[str, Any] = {"details": previous if isinstance(previous, dict) else None}
    async with keep_alive(lambda: progress["details"]):
        return await _finalise(inp, previous, progress)


async def _signed_descriptor(
    inp: FinaliseInput, src: RegistryClient, previous: Any, progress: dict[str, Any]
) -> tuple[StoredVersion, dict[str, Any]]:
    """The source version as planned, and the descriptor to write at the target (signed when asked).

    A descriptor signed by the attempt before (recorded in its heartbeat) is reused: RSASSA-PSS
    signatures differ every time, so signing again would write a second, different descriptor."""
    plan = inp.plan
    src_base = RepoBase.parse(inp.source.url)
    sv = await read_version(src, src_base, plan.name, plan.version)
    if sv.manifest_digest != plan.source_manifest_digest:
        raise VersionConflict(
            f"{plan.name}:{plan.version} changed at the source during the transport "
            f"({plan.source_manifest_digest} -> {sv.manifest_digest}); start it again"
        )
    desc = _target_descriptor(sv.descriptor, plan, src_base)
    if inp.sign is None:
        return sv, desc
    signed = previous.get("signed") if isinstance(previous, dict) else None
    if isinstance(signed, dict) and _unsigned(signed) == _unsigned(desc):
        return sv, signed  # signed by the attempt before: same bytes, no second descriptor
    key = sg.load_private_key(resolve_secret(inp.sign.private_key_ref))
    chain = sg.load_certificates(resolve_secret(inp.sign.certificate_ref)) if inp.sign.certificate_ref else []
    desc = sg.sign_descriptor(
        desc,
        name=inp.sign.name,
        private_key=key,
        algorithm=inp.sign.algorithm,
        normalisation=inp.sign.normalisation,
        chain=chain,
    )
    progress["details"] = {"signed": desc}  # what the keep-alive repeats from now on
    await record_progress(progress["details"])
    if activity.in_activity():
        activity.heartbeat(progress["details"])  # replaces an older throttled heartbeat
    return sv, desc


def _verification_key(sign: SigningSpec) -> Any:
    """The public key the target's signature is checked with: the configured one, else the signing key's."""
    if sign.public_key_ref:
        return sg.load_public_key(resolve_secret(sign.public_key_ref))
    return sg.load_private_key(resolve_secret(sign.private_key_ref)).public_key()


async def _missing_at_target(dst: RegistryClient, repo: str, layers: list[dict[str, Any]]) -> list[str]:
    held = await _gather_bounded([functools.partial(dst.blob_size, repo, lay["digest"]) for lay in layers])
    return [lay["digest"] for lay, size in zip(layers, held, strict=True) if size is None]


async def _finalise(inp: FinaliseInput, previous: Any, progress: dict[str, Any]) -> TransportedVersion:
    plan = inp.plan
    dst_base = RepoBase.parse(inp.target.url)
    repo = dst_base.component_repo(plan.name)
    pub = _verification_key(inp.sign) if inp.sign is not None else None
    async with client_for(inp.target) as dst:
        prepared = inp.prepared
        if prepared is not None:
            own = [prepared.descriptor_layer, prepared.config]
            missing = await _missing_at_target(dst, repo, [*prepared.blob_layers, *own])
            if set(missing) & {lay["digest"] for lay in own}:
                # Removed since it was prepared (a registry's garbage collection of blobs no manifest
                # referred to yet, during a days-long copy): sign and upload again below.
                activity.logger.warning(
                    "%s:%s: prepared descriptor gone at the target; writing it again", plan.name, plan.version
                )
                prepared = None
            elif missing:
                raise OCMError(f"{plan.name}:{plan.version}: local blob {missing[0]} is missing at the target")
        if prepared is not None:
            manifest_digest = await put_version_manifest(
                dst,
                dst_base,
                plan.name,
                plan.version,
                prepared.descriptor_layer,
                prepared.config,
                prepared.blob_layers,
            )
        else:
            async with client_for(inp.source) as src:  # only here: a prepared version needs no source
                sv, desc = await _signed_descriptor(inp, src, previous, progress)
            missing = await _missing_at_target(dst, repo, sv.blob_layers)
            if missing:
                raise OCMError(f"{plan.name}:{plan.version}: local blob {missing[0]} is missing at the target")
            written = await _written_before(dst, dst_base, plan, desc, inp.sign, pub)
            if written is not None:
                manifest_digest = written  # an earlier attempt wrote it (killed or handed off afterwards)
            else:
                manifest_digest = await write_version(dst, dst_base, desc, sv.blob_layers)
        # Read back from the target and verify there: what a consumer will see.
        tv = await read_version(dst, dst_base, plan.name, plan.version)
        if tv.manifest_digest != manifest_digest:
            raise VersionConflict(
                f"{plan.name}:{plan.version} at the target is {tv.manifest_digest}, we wrote "
                f"{manifest_digest}; another writer raced us"
            )
        sig_digest = ""
        if inp.sign is not None:
            res = sg.verify_descriptor(tv.descriptor, name=inp.sign.name, public_key=pub, strict=True)
            if not res.valid:
                raise SignatureInvalid(f"{plan.name}:{plan.version} at the target: {res.reason}")
            sig_digest = res.digest
        for access in plan.access_rewrites.values():
            ref = ImageRef.parse(access["imageReference"])
            if await dst.head_manifest(ref.repo, ref.digest or "") != ref.digest:
                raise OCMError(f"{plan.name}:{plan.version}: artifact {ref} is missing at the target")
    return TransportedVersion(
        name=plan.name,
        version=plan.version,
        outcome="overwritten" if plan.overwrite else ("signed" if plan.action == "sign" else "copied"),
        manifest_digest=manifest_digest,
        signature_digest=sig_digest,
        warnings=list(plan.warnings),
    )


async def _gather_bounded(calls: list[Callable[[], Awaitable[T]]], limit: int = 8) -> list[T]:
    """``calls`` at most ``limit`` at a time, results in order: a version's checks at the target without
    one round trip after the other, and without a request per blob at once for a version of hundreds."""
    sem = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def _written_before(
    dst: RegistryClient,
    dst_base: RepoBase,
    plan: VersionPlan,
    desc: dict[str, Any],
    sign: SigningSpec | None,
    pub: Any,
) -> str | None:
    """The target's manifest digest when an earlier attempt of this activity already wrote this
    version (it was killed or handed off afterwards): the same descriptor and, when signing, a valid
    signature of ours. Signing again would write a new descriptor (RSASSA-PSS signatures differ every
    time), i.e. a second write of the same version."""
    try:
        existing = await read_version(dst, dst_base, plan.name, plan.version)
    except OCMError:
        return None  # not there (ComponentNotFound) or unreadable: write it
    if _unsigned(existing.descriptor) != _unsigned(desc):
        return None
    if sign is not None:
        res = sg.verify_descriptor(existing.descriptor, name=sign.name, public_key=pub, strict=True)
        if not res.valid:
            return None
    return existing.manifest_digest


def _unsigned(descriptor: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in descriptor.items() if k != "signatures"}
