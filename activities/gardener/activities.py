"""The gardener activities. Each is idempotent: it reads the Shoot before acting."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from kubernetes_asyncio import watch
from kubernetes_asyncio.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.gardener.client import (
    APPLY,
    GROUP,
    MERGE,
    REQUEST_TIMEOUT,
    SHOOTS,
    VERSION,
    garden,
    get_profile,
    get_shoot,
    patch_shoot_body,
    raise_for,
)
from activities.gardener.manifest import shoot_manifest
from activities.liveness import keep_alive
from definitions.cluster import (
    ApplyShootInput,
    CandidatesInput,
    CandidatesResult,
    DeleteShootInput,
    MaintenanceCandidate,
    PatchShootInput,
    PlanInput,
    ShootRef,
    WaitShootInput,
)
from definitions.cluster_plan import (
    MAX_WORKER_SKEW,
    NON_RETRYABLE_CODES,
    PlanStep,
    Readiness,
    UpgradePlan,
    VersionError,
    latest_image_version,
    minor_of,
    parse_version,
    plan_control_plane,
    profile_image_versions,
    profile_kubernetes_versions,
    shoot_readiness,
)

CONFIRM_DELETION = "confirmation.gardener.cloud/deletion"
OPERATION = "gardener.cloud/operation"
WATCH_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


def _ref(obj: dict[str, Any], created: bool = False, note: str = "") -> ShootRef:
    meta = obj["metadata"]
    return ShootRef(
        name=meta["name"],
        namespace=meta["namespace"],
        kubernetes_version=str(obj["spec"]["kubernetes"]["version"]),
        generation=int(meta.get("generation", 0)),
        resource_version=str(meta["resourceVersion"]),
        created=created,
        note=note,
    )


@activity.defn(name="gardener_apply_shoot")
async def apply_shoot(inp: ApplyShootInput) -> ShootRef:
    """Create the Shoot with server-side apply, or adopt an existing one unchanged (then the workflow
    just waits for it). A spec that differs from the definition is reported, not overwritten:
    version changes are `cluster.upgrade`'s job and would otherwise be refused as downgrades."""
    cluster = inp.cluster
    ns, name = cluster.project_namespace, cluster.name
    async with garden(inp.garden) as co:
        existing = await get_shoot(co, ns, name)
        if existing is not None:
            have = existing["spec"]["kubernetes"]["version"]
            note = (
                ""
                if have == cluster.kubernetes_version
                else (
                    f"shoot exists at Kubernetes {have} (definition says {cluster.kubernetes_version}); left unchanged"
                )
            )
            if existing["metadata"].get("deletionTimestamp"):
                raise ApplicationError(
                    f"shoot {ns}/{name} is being deleted; wait until it is gone and create again",
                    type="ShootRejected",
                    non_retryable=False,
                )
            readiness = shoot_readiness(existing)
            if readiness.failed:
                # Re-running create after a Failed operation (quota raised, credentials fixed) is the
                # operator asking Gardener to try again: annotate `retry` once.
                try:
                    existing = await patch_shoot_body(
                        co, ns, name, {"metadata": {"annotations": {OPERATION: "retry"}}}, MERGE
                    )
                except ApiException as exc:
                    raise_for(exc, f"annotating shoot {ns}/{name} for retry")
                note = f"{note}; " if note else ""
                note += f"was Failed ({', '.join(readiness.codes) or 'no code'}): annotated retry"
            return _ref(existing, created=False, note=note)
        try:
            await patch_shoot_body(co, ns, name, shoot_manifest(cluster), APPLY)
        except ApiException as exc:
            raise_for(exc, f"creating shoot {ns}/{name}")
        created = await get_shoot(co, ns, name)
        if created is None:
            raise ApplicationError(f"shoot {ns}/{name} vanished right after it was created")
        return _ref(created, created=True)


def _judge(obj: dict[str, Any], inp: WaitShootInput) -> Readiness | None:
    """Ready -> the readiness; still waiting -> None; Failed -> raise (non-retryable)."""
    r = shoot_readiness(obj)
    activity.heartbeat(r.model_dump())
    if r.ready and r.generation >= inp.min_generation:
        r.observed_at = time.time()
        return r
    if r.failed and r.generation >= inp.min_generation:
        final = [c for c in r.codes if c in NON_RETRYABLE_CODES]
        codes = ", ".join(r.codes) or "no error code"
        raise ApplicationError(
            f"shoot {inp.namespace}/{inp.name}: {r.operation} Failed ({codes}): {r.description}",
            {"codes": r.codes, "final_codes": final, "description": r.description},
            type="ShootFailed",
            non_retryable=True,
        )
    return None


def _gone(inp: WaitShootInput, last: Readiness | None, how: str) -> Readiness:
    """The shoot is gone: what a deletion waits for, for any other wait a non-retryable failure."""
    if inp.expect_gone:
        return last or Readiness(ready=True, state="Deleted")
    raise ApplicationError(f"shoot {inp.namespace}/{inp.name} {how}", type="ShootNotFound", non_retryable=True)


@activity.defn(name="gardener_wait_shoot")
async def wait_shoot(inp: WaitShootInput) -> Readiness:
    """Wait until the Shoot is ready (or gone) by watching from the last resourceVersion seen.

    Watch sessions are short (``watch_seconds``) and heartbeat; a cut watch or a 5xx resumes from the
    last resourceVersion, a 410 re-reads the object; past ``deadline_epoch`` the activity fails with
    the last progress and task. Gardener's own Error state keeps the wait going (Gardener retries).
    """
    last: Readiness | None = None
    backoff = 0.1

    def progress() -> Any:
        return last.model_dump() if last else None

    # Watch sessions can pass without an event (a real API server sends bookmarks about once a
    # minute): keep heartbeating so the 10 s heartbeat timeout only fires when this worker is gone.
    async with garden(inp.garden) as co, keep_alive(progress):
        while True:
            try:
                obj = await get_shoot(co, inp.namespace, inp.name)
            except ApiException:
                obj, rv = None, ""
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                if time.time() > inp.deadline_epoch:
                    raise
                continue
            if obj is None:
                return _gone(inp, last, "does not exist")
            if not inp.expect_gone:
                done = _judge(obj, inp)
                if done is not None:
                    return done
            last = shoot_readiness(obj)
            rv = str(obj["metadata"]["resourceVersion"])
            # Watch from rv until ready / gone / deadline; resume from the last rv after a cut.
            while True:
                remaining = inp.deadline_epoch - time.time()
                if remaining <= 0:
                    what = "deleted" if inp.expect_gone else "ready"
                    raise ApplicationError(
                        f"shoot {inp.namespace}/{inp.name} not {what} before the deadline; "
                        f"{last.summary() if last else 'no status'}",
                        {"readiness": last.model_dump() if last else None},
                        type="ShootTimeout",
                        non_retryable=True,
                    )
                session = max(1, min(inp.watch_seconds, int(remaining) + 1))
                try:
                    async with watch.Watch().stream(
                        co.list_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        inp.namespace,
                        SHOOTS,
                        field_selector=f"metadata.name={inp.name}",
                        resource_version=rv,
                        allow_watch_bookmarks=True,
                        timeout_seconds=session,
                        _request_timeout=session + 10,
                    ) as stream:
                        async for ev in stream:
                            raw = ev["raw_object"]
                            rv = str(raw.get("metadata", {}).get("resourceVersion") or rv)
                            if ev["type"] == "BOOKMARK":
                                activity.heartbeat(last.model_dump() if last else None)
                                continue
                            if ev["type"] == "DELETED":
                                return _gone(inp, last, "was deleted while waiting")
                            last = shoot_readiness(raw)
                            if not inp.expect_gone:
                                done = _judge(raw, inp)
                                if done is not None:
                                    return done
                            else:
                                activity.heartbeat(last.model_dump())
                    backoff = 0.1
                    activity.heartbeat(last.model_dump() if last else None)
                except ApiException as exc:
                    if exc.status == 410:
                        break  # history compacted: re-read and watch from the fresh resourceVersion
                    if exc.status in (429,) or (exc.status or 0) >= 500:
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 2.0)
                        continue
                    raise_for(exc, f"watching shoot {inp.namespace}/{inp.name}")
                except WATCH_ERRORS:
                    # Cut mid-stream: resume from the last resourceVersion we saw (no event is lost).
                    activity.heartbeat(last.model_dump() if last else None)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)


def _worker_version(worker: dict[str, Any], control_plane: str) -> str:
    return str((worker.get("kubernetes") or {}).get("version") or control_plane)


def build_plan(shoot: dict[str, Any], profile: dict[str, Any], inp: PlanInput, now: datetime) -> UpgradePlan:
    """Control-plane steps one minor at a time, with pinned worker pools pulled along so they never
    trail by more than three minors, then pools to the final version, then machine images."""
    current = str(shoot["spec"]["kubernetes"]["version"])
    target = inp.target_version or current
    versions = profile_kubernetes_versions(profile)
    plan = plan_control_plane(versions, current, target, now, inp.allow_preview)
    workers = shoot["spec"]["provider"].get("workers") or []
    pinned = {w["name"]: str(w["kubernetes"]["version"]) for w in workers if (w.get("kubernetes") or {}).get("version")}
    steps: list[PlanStep] = []
    for cp_step in plan.steps:
        assert cp_step.kubernetes_version is not None
        major, minor = minor_of(cp_step.kubernetes_version)
        for pool, version in sorted(pinned.items()):
            while minor_of(version)[1] < minor - MAX_WORKER_SKEW:
                nxt = _best_in_minor(versions, (major, minor_of(version)[1] + 1), now, inp.allow_preview)
                steps.append(
                    PlanStep(
                        target=f"worker:{pool}",
                        kubernetes_version=nxt,
                        reason=f"keep pool within {MAX_WORKER_SKEW} minors of {cp_step.kubernetes_version}",
                    )
                )
                version = pinned[pool] = nxt
        steps.append(cp_step)
    if inp.upgrade_workers:
        for pool, version in sorted(pinned.items()):
            if parse_version(version) < parse_version(target):
                sub = plan_control_plane(versions, version, target, now, inp.allow_preview)
                steps.extend(
                    PlanStep(
                        target=f"worker:{pool}",
                        kubernetes_version=s.kubernetes_version,
                        reason="worker pool follows the control plane",
                    )
                    for s in sub.steps
                )
    if inp.machine_image_version:
        for w in workers:
            image = (w.get("machine") or {}).get("image") or {}
            available = profile_image_versions(profile, str(image.get("name")))
            wanted = inp.machine_image_version
            if wanted == "latest":
                wanted = latest_image_version(available, now, inp.allow_preview) or ""
            entry = next((v for v in available if v.version == wanted), None)
            if entry is None:
                raise VersionError(f"machine image {image.get('name')} {wanted} is not offered by the CloudProfile")
            if entry.expired(now):
                raise VersionError(f"machine image {image.get('name')} {wanted} expired on {entry.expirationDate}")
            have = str(image.get("version") or "")
            if have and parse_version(wanted) < parse_version(have):
                raise VersionError(f"pool {w['name']}: cannot downgrade machine image {have} -> {wanted}")
            if have != wanted:
                steps.append(
                    PlanStep(
                        target=f"worker:{w['name']}",
                        machine_image=str(image.get("name")),
                        machine_image_version=wanted,
                        reason="machine image update",
                    )
                )
    plan.steps = steps
    return plan


def _best_in_minor(versions: list[Any], minor: tuple[int, int], now: datetime, allow_preview: bool) -> str:
    usable = [
        v
        for v in versions
        if minor_of(v.version) == minor and not v.expired(now) and (allow_preview or v.classification != "preview")
    ]
    if not usable:
        raise VersionError(f"no usable {minor[0]}.{minor[1]}.x version for a worker pool in the CloudProfile")
    return str(max(usable, key=lambda v: parse_version(v.version)).version)


@activity.defn(name="gardener_plan_upgrade")
async def plan_upgrade(inp: PlanInput) -> UpgradePlan:
    async with garden(inp.garden) as co:
        shoot = await get_shoot(co, inp.namespace, inp.name)
        if shoot is None:
            raise ApplicationError(
                f"shoot {inp.namespace}/{inp.name} does not exist", type="ShootNotFound", non_retryable=True
            )
        spec = shoot["spec"]
        profile_name = (spec.get("cloudProfile") or {}).get("name") or spec.get("cloudProfileName")
        profile = await get_profile(co, str(profile_name))
    try:
        return build_plan(shoot, profile, inp, datetime.now(UTC))
    except VersionError as exc:
        raise ApplicationError(
            f"shoot {inp.namespace}/{inp.name}: {exc}", type="UpgradeNotPossible", non_retryable=True
        ) from None


def _apply_step(spec: dict[str, Any], step: PlanStep) -> bool:
    """Change ``spec`` for one plan step; False when it is already there (idempotence)."""
    if step.target == "controlPlane":
        if spec["kubernetes"]["version"] == step.kubernetes_version:
            return False
        spec["kubernetes"]["version"] = step.kubernetes_version
        return True
    pool = step.target.removeprefix("worker:")
    for w in spec["provider"].get("workers") or []:
        if w.get("name") != pool:
            continue
        changed = False
        if step.kubernetes_version and (w.get("kubernetes") or {}).get("version") != step.kubernetes_version:
            w.setdefault("kubernetes", {})["version"] = step.kubernetes_version
            changed = True
        image = w.setdefault("machine", {}).setdefault("image", {})
        if step.machine_image_version and image.get("version") != step.machine_image_version:
            image["version"] = step.machine_image_version
            changed = True
        return changed
    raise ApplicationError(
        f"worker pool {pool!r} does not exist in the shoot", type="UpgradeNotPossible", non_retryable=True
    )


@activity.defn(name="gardener_patch_shoot")
async def patch_shoot(inp: PatchShootInput) -> ShootRef:
    """Apply one plan step as a merge patch carrying the resourceVersion read just before, so a
    concurrent writer makes it fail with 409; then re-read and try again (a few times, then Temporal)."""
    async with garden(inp.garden) as co:
        for _ in range(5):
            shoot = await get_shoot(co, inp.namespace, inp.name)
            if shoot is None:
                raise ApplicationError(
                    f"shoot {inp.namespace}/{inp.name} does not exist",
                    type="ShootNotFound",
                    non_retryable=True,
                )
            spec = copy.deepcopy(shoot["spec"])
            confined = ((shoot["spec"].get("maintenance") or {}).get("confineSpecUpdateRollout")) is True
            body: dict[str, Any] = {"metadata": {"resourceVersion": shoot["metadata"]["resourceVersion"]}}
            if not _apply_step(spec, inp.step):
                pending = shoot_readiness(shoot)
                if not (inp.force_reconcile and confined and pending.generation != pending.observed_generation):
                    return _ref(shoot, note="already at this step")
                # Written before (a re-run), but held back by confineSpecUpdateRollout: release it.
            elif inp.step.target == "controlPlane":
                body["spec"] = {"kubernetes": spec["kubernetes"]}
            else:
                body["spec"] = {"provider": {"workers": spec["provider"]["workers"]}}
            if inp.force_reconcile and confined:
                # Roll this change out now instead of in the next maintenance window.
                body["metadata"]["annotations"] = {OPERATION: "reconcile"}
            try:
                patched = await patch_shoot_body(co, inp.namespace, inp.name, body, MERGE)
                return _ref(patched)
            except ApiException as exc:
                if exc.status == 409:
                    activity.heartbeat("conflict; re-reading")
                    continue
                raise_for(exc, f"patching shoot {inp.namespace}/{inp.name} ({inp.step.target})")
        raise ApplicationError(
            f"shoot {inp.namespace}/{inp.name} kept changing under the patch (409 five times)",
            type="ShootConflict",
        )


@activity.defn(name="gardener_annotate_shoot")
async def annotate_retry(inp: DeleteShootInput) -> ShootRef:
    """Ask Gardener to retry a Failed operation (`gardener.cloud/operation: retry`)."""
    async with garden(inp.garden) as co:
        try:
            obj = await patch_shoot_body(
                co, inp.namespace, inp.name, {"metadata": {"annotations": {OPERATION: "retry"}}}, MERGE
            )
        except ApiException as exc:
            raise_for(exc, f"annotating shoot {inp.namespace}/{inp.name} for retry")
            raise
        return _ref(obj)


@activity.defn(name="gardener_delete_shoot")
async def delete_shoot(inp: DeleteShootInput) -> bool:
    """Confirm and delete; True if the shoot existed. Already deleting or gone is fine."""
    async with garden(inp.garden) as co:
        shoot = await get_shoot(co, inp.namespace, inp.name)
        if shoot is None:
            return False
        if shoot["metadata"].get("deletionTimestamp"):
            return True
        try:
            if (shoot["metadata"].get("annotations") or {}).get(CONFIRM_DELETION) != "true":
                await patch_shoot_body(
                    co,
                    inp.namespace,
                    inp.name,
                    {"metadata": {"annotations": {CONFIRM_DELETION: "true"}}},
                    MERGE,
                )
            await co.delete_namespaced_custom_object(
                GROUP, VERSION, inp.namespace, SHOOTS, inp.name, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise_for(exc, f"deleting shoot {inp.namespace}/{inp.name}")
        return True


@activity.defn(name="gardener_maintenance_candidates")
async def maintenance_candidates(inp: CandidatesInput) -> CandidatesResult:
    """Shoots whose Kubernetes or machine image version is deprecated, expired or expiring soon,
    each with the one-step target the maintain workflow should move it to."""
    now = datetime.now(UTC)
    out: list[MaintenanceCandidate] = []
    async with garden(inp.garden) as co:
        try:
            listed = await co.list_namespaced_custom_object(
                GROUP, VERSION, inp.namespace, SHOOTS, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            raise_for(exc, f"listing shoots in {inp.namespace}")
            raise
        profiles: dict[str, dict[str, Any]] = {}
        for shoot in listed.get("items", []):
            name = shoot["metadata"]["name"]
            if inp.names is not None and name not in inp.names:
                continue
            if shoot["metadata"].get("deletionTimestamp"):
                continue
            spec = shoot["spec"]
            pname = str((spec.get("cloudProfile") or {}).get("name") or spec.get("cloudProfileName"))
            if pname not in profiles:
                profiles[pname] = await get_profile(co, pname)
            cand = _candidate(shoot, profiles[pname], inp, now)
            if cand is not None:
                out.append(cand)
    return CandidatesResult(candidates=out)


def _candidate(
    shoot: dict[str, Any], profile: dict[str, Any], inp: CandidatesInput, now: datetime
) -> MaintenanceCandidate | None:
    spec = shoot["spec"]
    current = str(spec["kubernetes"]["version"])
    window = (spec.get("maintenance") or {}).get("timeWindow") or {}
    cand = MaintenanceCandidate(
        name=shoot["metadata"]["name"],
        namespace=shoot["metadata"]["namespace"],
        kubernetes_version=current,
        window_begin=window.get("begin", "220000+0000"),
        window_end=window.get("end", "230000+0000"),
    )
    versions = profile_kubernetes_versions(profile)
    entry = next((v for v in versions if v.version == current), None)

    def healthy(v: Any) -> bool:
        return (
            not v.expires_within(now, inp.expiring_within_days)
            and v.classification != "deprecated"
            and (inp.allow_preview or v.classification != "preview")
        )

    if entry is None or entry.classification == "deprecated" or entry.expires_within(now, inp.expiring_within_days):
        why = (
            "not offered"
            if entry is None
            else (f"expires {entry.expirationDate}" if entry.expirationDate else entry.classification)
        )
        cand.reasons.append(f"Kubernetes {current}: {why}")
        same_minor = [
            v
            for v in versions
            if minor_of(v.version) == minor_of(current)
            and parse_version(v.version) > parse_version(current)
            and healthy(v)
        ]
        nxt = (minor_of(current)[0], minor_of(current)[1] + 1)
        next_minor = [
            v
            for v in versions
            if minor_of(v.version) == nxt
            and not v.expired(now)
            and (inp.allow_preview or v.classification != "preview")
        ]
        pick = same_minor or next_minor
        if pick:
            cand.target_version = max(pick, key=lambda v: parse_version(v.version)).version
        else:
            cand.reasons.append("no usable newer version in the CloudProfile")
    for w in spec["provider"].get("workers") or []:
        image = (w.get("machine") or {}).get("image") or {}
        available = profile_image_versions(profile, str(image.get("name")))
        ientry = next((v for v in available if v.version == image.get("version")), None)
        if ientry is not None and (
            ientry.classification == "deprecated" or ientry.expires_within(now, inp.expiring_within_days)
        ):
            latest = latest_image_version([v for v in available if healthy(v)], now, inp.allow_preview)
            if latest and latest != image.get("version"):
                cand.machine_image_version = latest
                cand.reasons.append(
                    f"pool {w['name']}: image {image.get('name')} {image.get('version')} "
                    f"{ientry.classification}, expires {ientry.expirationDate}"
                )
    return cand if cand.reasons else None


ACTIVITIES: list[Callable[..., Any]] = [
    apply_shoot,
    wait_shoot,
    plan_upgrade,
    patch_shoot,
    annotate_retry,
    delete_shoot,
    maintenance_candidates,
]
