"""What Gardener's API server checks on Shoots (validation + the ShootValidator admission plugin).

Static checks answer 422 Invalid (downgrade, skipped minor, immutable fields, worker skew), checks
against other objects answer 403 Forbidden as Gardener's admission plugins do (unknown CloudProfile,
version not offered or expired, missing credentials binding), and DELETE without the confirmation
annotation answers 403.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from definitions.cluster_plan import (
    VersionError,
    minor_distance,
    parse_version,
    profile_image_versions,
    profile_kubernetes_versions,
    worker_skew_problem,
)
from landscape.gardener.kinds import CONFIRM_DELETION, CORE, FINALIZER, OPERATION, SECURITY
from landscape.kubeapi import errors
from landscape.kubeapi.kinds import AdmissionRequest

Obj = dict[str, Any]
#: store.notes key: {(namespace, name, generation)} whose rollout an operation annotation forced.
FORCED_NOTE = "gardener.forced-reconciles"


def profile_name(shoot: Obj) -> str:
    spec = shoot.get("spec") or {}
    return str((spec.get("cloudProfile") or {}).get("name") or spec.get("cloudProfileName") or "")


def _forbidden(req: AdmissionRequest, why: str) -> errors.ApiError:
    return errors.forbidden("shoots", req.name, CORE, why)


def _invalid(req: AdmissionRequest, causes: list[tuple[str, str, str]]) -> errors.ApiError:
    return errors.invalid("Shoot", CORE, req.name, causes)


def _now() -> datetime:
    return datetime.now(UTC)


def admit_shoot(req: AdmissionRequest) -> None:
    """Mutating part: finalizer, patch-version defaulting, and the operation annotation handling."""
    if req.new is None or req.subresource:
        return
    meta = req.new.setdefault("metadata", {})
    if req.operation == "CREATE":
        fins = meta.setdefault("finalizers", [])
        if FINALIZER not in fins:
            fins.append(FINALIZER)
        _default_patch_version(req)
    if req.operation == "UPDATE" and req.old is not None:
        _default_patch_version(req)
        annotations = meta.get("annotations") or {}
        op = annotations.get(OPERATION)
        last = (req.old.get("status") or {}).get("lastOperation") or {}
        if op in ("reconcile", "retry"):
            # Gardener's registry strategy bumps the generation and drops these annotations.
            if op == "reconcile" or last.get("state") == "Failed":
                meta["generation"] = max(
                    int(meta.get("generation", 1)), int(req.old["metadata"].get("generation", 1)) + 1
                )
                if not req.dry_run:
                    # The gardenlet must know this generation was asked for explicitly: it rolls it
                    # out even outside the window of a shoot with confineSpecUpdateRollout.
                    forced = req.store.notes.setdefault(FORCED_NOTE, set())
                    forced.add((meta.get("namespace"), meta.get("name"), int(meta["generation"])))
            del annotations[OPERATION]


def _default_patch_version(req: AdmissionRequest) -> None:
    """`spec.kubernetes.version: "1.31"` becomes the newest offered 1.31.x, as Gardener defaults it."""
    assert req.new is not None
    k8s = (req.new.get("spec") or {}).get("kubernetes") or {}
    version = str(k8s.get("version") or "")
    if version.count(".") != 1:
        return
    profile = req.store.peek(_profile_kind(req), None, profile_name(req.new))
    if profile is None:
        return
    try:
        minor = tuple(int(p) for p in version.split("."))
    except ValueError:
        return
    matches = [
        v
        for v in profile_kubernetes_versions(profile)
        if parse_version(v.version)[:2] == minor and not v.expired(_now()) and v.classification != "preview"
    ]
    if matches:
        k8s["version"] = matches[-1].version


def _profile_kind(req: AdmissionRequest) -> Any:
    kind = req.store.registry.get(CORE, "v1beta1", "cloudprofiles")
    assert kind is not None
    return kind


def validate_shoot(req: AdmissionRequest) -> None:
    if req.operation == "DELETE":
        annotations = (req.old or {}).get("metadata", {}).get("annotations") or {}
        if annotations.get(CONFIRM_DELETION) != "true":
            raise _forbidden(req, f'must have a "{CONFIRM_DELETION}" annotation with value "true" to delete')
        return
    if req.subresource or req.new is None:
        return
    new = req.new
    old = req.old
    spec = new.get("spec") or {}
    if old is not None and (old.get("metadata") or {}).get("deletionTimestamp"):
        if (old.get("spec") or {}) != spec:
            raise _forbidden(req, "the shoot is being deleted; its spec cannot change")
        return
    causes: list[tuple[str, str, str]] = []
    k8s_version = str((spec.get("kubernetes") or {}).get("version") or "")
    if not k8s_version:
        causes.append(("spec.kubernetes.version", "FieldValueRequired", "Required value"))
    if not profile_name(new):
        causes.append(("spec.cloudProfile.name", "FieldValueRequired", "Required value"))
    if not spec.get("region"):
        causes.append(("spec.region", "FieldValueRequired", "Required value"))
    provider = spec.get("provider") or {}
    if not provider.get("type"):
        causes.append(("spec.provider.type", "FieldValueRequired", "Required value"))
    workers = provider.get("workers") or []
    try:
        cp = parse_version(k8s_version) if k8s_version else None
    except VersionError as exc:
        causes.append(("spec.kubernetes.version", "FieldValueInvalid", str(exc)))
        cp = None
    for i, w in enumerate(workers):
        wv = (w.get("kubernetes") or {}).get("version")
        if wv and cp is not None:
            problem = worker_skew_problem(k8s_version, str(wv))
            if problem:
                causes.append((f"spec.provider.workers[{i}].kubernetes.version", "FieldValueForbidden", problem))
        if not (w.get("machine") or {}).get("type"):
            causes.append((f"spec.provider.workers[{i}].machine.type", "FieldValueRequired", "Required value"))
    if old is not None:
        ospec = old.get("spec") or {}
        for path, a, b in (
            ("spec.region", ospec.get("region"), spec.get("region")),
            ("spec.provider.type", (ospec.get("provider") or {}).get("type"), provider.get("type")),
            ("spec.cloudProfile.name", profile_name(old), profile_name(new)),
            (
                "spec.networking.type",
                (ospec.get("networking") or {}).get("type"),
                (spec.get("networking") or {}).get("type"),
            ),
        ):
            if a != b:
                causes.append((path, "FieldValueInvalid", f"Invalid value: {b!r}: field is immutable"))
        old_version = str((ospec.get("kubernetes") or {}).get("version") or "")
        if old_version and cp is not None and old_version != k8s_version:
            if parse_version(k8s_version) < parse_version(old_version):
                causes.append(
                    (
                        "spec.kubernetes.version",
                        "FieldValueForbidden",
                        "Forbidden: kubernetes version downgrade is not supported",
                    )
                )
            elif minor_distance(old_version, k8s_version) > 1:
                causes.append(
                    (
                        "spec.kubernetes.version",
                        "FieldValueForbidden",
                        "Forbidden: kubernetes version upgrade cannot skip a minor version",
                    )
                )
    if causes:
        raise _invalid(req, causes)
    _check_against_profile(req, new, old)
    _check_credentials(req, new)


def _check_against_profile(req: AdmissionRequest, new: Obj, old: Obj | None) -> None:
    name = profile_name(new)
    profile = req.store.peek(_profile_kind(req), None, name)
    if profile is None:
        raise _forbidden(req, f'could not find referenced cloud profile: cloudprofiles.{CORE} "{name}" not found')
    spec = new.get("spec") or {}
    pspec = profile.get("spec") or {}
    now = _now()
    problems: list[str] = []
    if pspec.get("type") and (spec.get("provider") or {}).get("type") != pspec["type"]:
        problems.append(f"spec.provider.type: must be {pspec['type']!r} to use cloud profile {name!r}")
    regions = [r.get("name") for r in pspec.get("regions") or []]
    if regions and spec.get("region") not in regions:
        problems.append(
            f"spec.region: Unsupported value: {spec.get('region')!r}: supported values: "
            + ", ".join(map(repr, regions))
        )
    version = str((spec.get("kubernetes") or {}).get("version"))
    old_version = str(((old or {}).get("spec") or {}).get("kubernetes", {}).get("version") or "")
    offered = {v.version: v for v in profile_kubernetes_versions(profile)}
    entry = offered.get(version)
    if entry is None:
        problems.append(
            f"spec.kubernetes.version: Unsupported value: {version!r}: supported values: "
            + ", ".join(map(repr, offered))
        )
    elif entry.expired(now) and version != old_version:
        problems.append(
            f"spec.kubernetes.version: Unsupported value: {version!r}: version expired on {entry.expirationDate}"
        )
    machine_types = [m.get("name") for m in pspec.get("machineTypes") or []]
    old_workers = {w.get("name"): w for w in ((old or {}).get("spec") or {}).get("provider", {}).get("workers") or []}
    for i, w in enumerate((spec.get("provider") or {}).get("workers") or []):
        mtype = (w.get("machine") or {}).get("type")
        if machine_types and mtype not in machine_types:
            problems.append(f"spec.provider.workers[{i}].machine.type: Unsupported value: {mtype!r}")
        image = (w.get("machine") or {}).get("image") or {}
        if image.get("name"):
            versions = {v.version: v for v in profile_image_versions(profile, image["name"])}
            if not versions:
                problems.append(f"spec.provider.workers[{i}].machine.image.name: Unsupported value: {image['name']!r}")
            elif image.get("version"):
                iv = versions.get(str(image["version"]))
                old_image = ((old_workers.get(w.get("name")) or {}).get("machine") or {}).get("image") or {}
                if iv is None:
                    problems.append(
                        f"spec.provider.workers[{i}].machine.image.version: Unsupported value: "
                        f"{image['version']!r}: supported values: " + ", ".join(map(repr, versions))
                    )
                elif iv.expired(now) and old_image.get("version") != image["version"]:
                    problems.append(
                        f"spec.provider.workers[{i}].machine.image.version: version "
                        f"{image['version']!r} expired on {iv.expirationDate}"
                    )
    if problems:
        raise _forbidden(req, "; ".join(problems))


def _check_credentials(req: AdmissionRequest, new: Obj) -> None:
    spec = new.get("spec") or {}
    ns = new["metadata"].get("namespace")
    if spec.get("credentialsBindingName"):
        kind = req.store.registry.get(SECURITY, "v1alpha1", "credentialsbindings")
        name = spec["credentialsBindingName"]
    elif spec.get("secretBindingName"):
        kind = req.store.registry.get(CORE, "v1beta1", "secretbindings")
        name = spec["secretBindingName"]
    else:
        raise _invalid(
            req,
            [
                (
                    "spec.credentialsBindingName",
                    "FieldValueRequired",
                    "Required value: a credentials binding or secret binding",
                )
            ],
        )
    assert kind is not None
    if req.store.peek(kind, ns, name) is None:
        raise _forbidden(req, f'could not find referenced {kind.plural}.{kind.group} "{name}" in namespace {ns}')


def validate_cloud_profile(req: AdmissionRequest) -> None:
    if req.operation == "DELETE" or req.new is None:
        return
    causes = []
    raw = ((req.new.get("spec") or {}).get("kubernetes") or {}).get("versions") or []
    for i, v in enumerate(raw):
        try:
            parse_version(str(v.get("version")))
        except VersionError as exc:
            causes.append((f"spec.kubernetes.versions[{i}].version", "FieldValueInvalid", str(exc)))
        if v.get("classification", "supported") not in ("preview", "supported", "deprecated"):
            causes.append(
                (
                    f"spec.kubernetes.versions[{i}].classification",
                    "FieldValueNotSupported",
                    f"Unsupported value: {v.get('classification')!r}",
                )
            )
    if causes:
        raise errors.invalid("CloudProfile", CORE, req.name, causes)
