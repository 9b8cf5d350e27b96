"""What Gardener's API server checks on Shoots (validation + the ShootMutator and ShootValidator
admission plugins).

The ShootMutator's defaulting runs first (Kubernetes version "1.31" or none -> the highest supported
patch; worker pools without a machine image get the profile's default image at its latest usable
version; an existing pool keeps its image). Static checks answer 422 Invalid (downgrade, skipped minor,
immutable fields, worker skew, maintenance window), checks against other objects answer 403 Forbidden
as Gardener's admission plugins do (unknown CloudProfile, version not offered or expired, missing
credentials binding), and DELETE without the confirmation annotation answers 403. The rules
themselves live in :mod:`landscape.gardener.rules`, written from Gardener's sources.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from landscape.gardener import day2, rules
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
    if not (meta.get("deletionTimestamp")):
        _default_versions(req)
    if req.operation == "UPDATE" and req.old is not None:
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
        day2.admit_rotation(req, meta, op)


def _default_versions(req: AdmissionRequest) -> None:
    """The ShootMutator's defaulting: control plane and pool Kubernetes versions without a patch (or
    absent) become the newest *supported* match; pools without a machine image keep the old pool's or
    get the profile's default image (403 when nothing qualifies, as Gardener answers)."""
    assert req.new is not None
    profile = req.store.peek(_profile_kind(req), None, profile_name(req.new))
    if profile is None:
        return  # the validator names the missing profile
    now = _now()
    spec = req.new.setdefault("spec", {})
    k8s = spec.setdefault("kubernetes", {})
    versions = rules.kubernetes_versions(profile)
    problems: list[str] = []
    try:
        k8s["version"] = rules.default_kubernetes_version(versions, str(k8s.get("version") or ""), now)
    except rules.RuleError as exc:
        problems.append(f"spec.kubernetes.version: Invalid value: {k8s.get('version')!r}: {exc}")
    old_workers = {
        w.get("name"): w for w in (((req.old or {}).get("spec") or {}).get("provider") or {}).get("workers") or []
    }
    images = rules.machine_images(profile)
    for i, w in enumerate((spec.get("provider") or {}).get("workers") or []):
        wk = w.get("kubernetes") or {}
        if wk.get("version"):
            try:
                wk["version"] = rules.default_kubernetes_version(versions, str(wk["version"]), now)
            except rules.RuleError as exc:
                problems.append(f"spec.provider.workers[{i}].kubernetes.version: Invalid value: {exc}")
        machine = w.setdefault("machine", {})
        image = machine.get("image")
        old_image = ((old_workers.get(w.get("name")) or {}).get("machine") or {}).get("image")
        if old_image:
            if not image:
                machine["image"] = dict(old_image)
                continue
            if image.get("name") == old_image.get("name") and image.get("version") in (
                None,
                "",
                old_image.get("version"),
            ):
                machine["image"] = {**old_image, **{k: v for k, v in image.items() if k != "version"}}
                continue
        try:
            machine["image"] = rules.default_machine_image(images, image, now)
        except rules.RuleError as exc:
            problems.append(f"spec.provider.workers[{i}].machine.image: Invalid value: {exc}")
    if problems:
        raise _forbidden(req, "; ".join(problems))


def _profile_kind(req: AdmissionRequest) -> Any:
    kind = req.store.registry.get(CORE, "v1beta1", "cloudprofiles")
    assert kind is not None
    return kind


def validate_shoot(req: AdmissionRequest) -> None:
    day2.validate(req)
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
    cp: str | None = k8s_version or None
    if cp is not None:
        try:
            rules.Semver.parse(cp)
        except rules.RuleError as exc:
            causes.append(("spec.kubernetes.version", "FieldValueInvalid", f"Invalid value: {cp!r}: {exc}"))
            cp = None
    ospec = (old or {}).get("spec") or {}
    old_version = str((ospec.get("kubernetes") or {}).get("version") or "")
    old_workers = {w.get("name"): w for w in (ospec.get("provider") or {}).get("workers") or []}
    for i, w in enumerate(workers):
        path = f"spec.provider.workers[{i}]"
        wv = str((w.get("kubernetes") or {}).get("version") or "")
        if wv and cp is not None:
            try:
                problem = rules.worker_skew_problem(cp, wv)
            except rules.RuleError as exc:
                problem = f"Invalid value: {wv!r}: {exc}"
            if problem:
                causes.append((f"{path}.kubernetes.version", "FieldValueForbidden", problem))
        if old is not None and cp is not None and old_version:
            # A pool's effective version (its own, else the control plane's) never goes down; it may
            # skip minors (rolling update strategy).
            ow = old_workers.get(w.get("name")) or w
            before = str((ow.get("kubernetes") or {}).get("version") or old_version)
            try:
                problem = rules.kubernetes_update_problem(wv or cp, before, skip_minor_allowed=True)
            except rules.RuleError:
                problem = None
            if problem:
                causes.append((f"{path}.kubernetes.version", "FieldValueForbidden", problem))
        if not (w.get("machine") or {}).get("type"):
            causes.append((f"{path}.machine.type", "FieldValueRequired", "Required value"))
    window = (spec.get("maintenance") or {}).get("timeWindow")
    if window:
        causes += rules.window_problems(str(window.get("begin")), str(window.get("end")))
    if old is not None:
        for path, x, y in (
            ("spec.region", ospec.get("region"), spec.get("region")),
            ("spec.provider.type", (ospec.get("provider") or {}).get("type"), provider.get("type")),
            ("spec.cloudProfile.name", profile_name(old), profile_name(new)),
            (
                "spec.networking.type",
                (ospec.get("networking") or {}).get("type"),
                (spec.get("networking") or {}).get("type"),
            ),
        ):
            if x != y:
                causes.append((path, "FieldValueInvalid", f"Invalid value: {y!r}: field is immutable"))
        if old_version and cp is not None and old_version != cp:
            try:
                problem = rules.kubernetes_update_problem(cp, old_version, skip_minor_allowed=False)
            except rules.RuleError as exc:
                problem = str(exc)
            if problem:
                causes.append(("spec.kubernetes.version", "FieldValueForbidden", problem))
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
    creating = old is None
    versions = rules.kubernetes_versions(profile)
    version = str((spec.get("kubernetes") or {}).get("version"))
    ospec = (old or {}).get("spec") or {}
    old_version = str((ospec.get("kubernetes") or {}).get("version") or "")
    problem = rules.kubernetes_constraint_problem(versions, version, old_version, creating=creating, now=now)
    if problem:
        problems.append(f"spec.kubernetes.version: {problem}")
    machine_types = [m.get("name") for m in pspec.get("machineTypes") or []]
    old_workers = {w.get("name"): w for w in (ospec.get("provider") or {}).get("workers") or []}
    for i, w in enumerate((spec.get("provider") or {}).get("workers") or []):
        old_w = old_workers.get(w.get("name"))
        new_pool = creating or old_w is None
        mtype = (w.get("machine") or {}).get("type")
        if machine_types and mtype not in machine_types and mtype != ((old_w or {}).get("machine") or {}).get("type"):
            problems.append(
                f"spec.provider.workers[{i}].machine.type: Unsupported value: {mtype!r}: supported values: "
                + ", ".join(map(repr, machine_types))
            )
        wv = (w.get("kubernetes") or {}).get("version")
        if wv:
            before = str(((old_w or {}).get("kubernetes") or {}).get("version") or old_version)
            problem = rules.kubernetes_constraint_problem(versions, str(wv), before, creating=new_pool, now=now)
            if problem:
                problems.append(f"spec.provider.workers[{i}].kubernetes.version: {problem}")
        image = (w.get("machine") or {}).get("image") or {}
        old_image = ((old_w or {}).get("machine") or {}).get("image")
        problem = rules.machine_image_problem(
            rules.machine_images(profile), image, old_image, creating=new_pool, now=now
        )
        if problem:
            problems.append(f"spec.provider.workers[{i}].machine.image.version: {problem}")
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
    """Kubernetes and machine image versions of a CloudProfile, in the legacy ``classification`` /
    ``expirationDate`` form or the ``lifecycle`` form (the garden runs with Gardener's
    VersionClassificationLifecycle feature gate on)."""
    if req.operation == "DELETE" or req.new is None:
        return
    causes = rules.cloud_profile_problems(req.new)
    if causes:
        raise errors.invalid("CloudProfile", CORE, req.name, causes)
