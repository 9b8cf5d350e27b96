"""Day-2 operations of the simulated Gardener: credential rotation and hibernation.

Written from Gardener's documentation (``docs/usage/shoot-operations/shoot_credentials_rotation.md``,
``docs/usage/shoot/shoot_hibernate.md``) and its Shoot validation:

- ``gardener.cloud/operation: rotate-credentials-start`` / ``rotate-credentials-complete`` make the
  API server bump the generation (the annotation stays until the gardenlet picks it up and removes
  it). The start is refused unless the shoot was created successfully and every phased credential
  (``certificateAuthorities``, ``serviceAccountKey``, ``etcdEncryptionKey``) is ``Completed`` or never
  rotated; the completion is refused unless all three are ``Prepared``; both are refused while the
  shoot is hibernated ("operation is not permitted when shoot is hibernated").
- The gardenlet's reconcile moves the phases ``Preparing`` -> ``Prepared`` (start) or
  ``Completing`` -> ``Completed`` (complete) and writes ``lastInitiationTime``,
  ``lastInitiationFinishedTime``, ``lastCompletionTriggeredTime``, ``lastCompletionTime`` under
  ``status.credentials.rotation.<credential>``; ``sshKeypair`` and ``observability`` only get
  ``lastInitiationTime`` / ``lastCompletionTime`` (they rotate in one step).
- ``spec.hibernation.enabled`` is a spec change: the reconcile scales the cluster down (or up) and,
  when it succeeds, sets ``status.hibernated``.

Nothing here imports product code (``lint-imports`` enforces the two worlds).
"""

from __future__ import annotations

from typing import Any

from landscape.gardener.kinds import CORE, OPERATION
from landscape.kubeapi import errors
from landscape.kubeapi.kinds import AdmissionRequest
from landscape.kubeapi.store import now_rfc3339

ROTATE_START = "rotate-credentials-start"
ROTATE_COMPLETE = "rotate-credentials-complete"
ROTATIONS = (ROTATE_START, ROTATE_COMPLETE)
PHASED = ("certificateAuthorities", "serviceAccountKey", "etcdEncryptionKey")
UNPHASED = ("sshKeypair", "observability")

Obj = dict[str, Any]


def hibernation_enabled(shoot: Obj) -> bool:
    return bool(((shoot.get("spec") or {}).get("hibernation") or {}).get("enabled"))


def rotation(status: Obj) -> Obj:
    return ((status.get("credentials") or {}).get("rotation")) or {}


def admit_rotation(req: AdmissionRequest, meta: Obj, op: str | None) -> None:
    """Mutating: a newly set rotation annotation forces a new generation (the gardenlet acts on it)."""
    if op not in ROTATIONS or req.old is None or req.subresource:
        return
    old_op = ((req.old.get("metadata") or {}).get("annotations") or {}).get(OPERATION)
    if old_op == op:
        return
    meta["generation"] = max(int(meta.get("generation", 1)), int(req.old["metadata"].get("generation", 1)) + 1)


def validate(req: AdmissionRequest) -> None:
    validate_hibernation(req)
    validate_rotation(req)


def validate_hibernation(req: AdmissionRequest) -> None:
    """Schedules need a valid cron for start and/or end and a known location (422 otherwise)."""
    from zoneinfo import ZoneInfo

    from landscape.gardener.hibernation import Cron, CronError

    if req.new is None or req.subresource:
        return
    causes = []
    for i, sch in enumerate(((req.new.get("spec") or {}).get("hibernation") or {}).get("schedules") or []):
        path = f"spec.hibernation.schedules[{i}]"
        if not sch.get("start") and not sch.get("end"):
            causes.append((path, "FieldValueRequired", "either start or end schedule must be set"))
        for key in ("start", "end"):
            if sch.get(key):
                try:
                    Cron.parse(str(sch[key]))
                except CronError as exc:
                    causes.append((f"{path}.{key}", "FieldValueInvalid", str(exc)))
        if sch.get("location"):
            try:
                ZoneInfo(str(sch["location"]))
            except (ValueError, KeyError, OSError):
                causes.append((f"{path}.location", "FieldValueInvalid", f"unknown location {sch['location']!r}"))
    if causes:
        raise errors.invalid("Shoot", CORE, req.name, causes)


def validate_rotation(req: AdmissionRequest) -> None:
    """The checks Gardener's Shoot validation makes before accepting a rotation operation."""
    if req.operation != "UPDATE" or req.new is None or req.old is None or req.subresource:
        return
    op = ((req.new.get("metadata") or {}).get("annotations") or {}).get(OPERATION)
    old_op = ((req.old.get("metadata") or {}).get("annotations") or {}).get(OPERATION)
    if op not in ROTATIONS or op == old_op:
        return
    status = req.old.get("status") or {}
    problems: list[str] = []
    if hibernation_enabled(req.new) or status.get("hibernated"):
        problems.append("operation is not permitted when shoot is hibernated")
    phases = {c: str((rotation(status).get(c) or {}).get("phase") or "") for c in PHASED}
    if op == ROTATE_START:
        last = status.get("lastOperation") or {}
        ready = (last.get("type") == "Create" and last.get("state") == "Succeeded") or last.get("type") == "Reconcile"
        if not ready:
            problems.append(
                "cannot start rotation of all credentials if shoot was not yet created successfully "
                "or is not ready for reconciliation"
            )
        for c, phase in phases.items():
            if phase and phase != "Completed":
                problems.append(
                    f"cannot start rotation of all credentials if .status.credentials.rotation.{c}.phase "
                    "is not 'Completed'"
                )
    else:
        for c, phase in phases.items():
            if phase != "Prepared":
                problems.append(
                    f"cannot complete rotation of all credentials if .status.credentials.rotation.{c}.phase "
                    "is not 'Prepared'"
                )
    if problems:
        why = "; ".join(f"metadata.annotations[{OPERATION}]: {p}" for p in problems)
        raise errors.forbidden("shoots", req.name, CORE, why)


def begin(status: Obj, op: str | None) -> None:
    """At the start of a reconcile: the rotation the annotation asked for enters its running phase."""
    if op not in ROTATIONS:
        return
    now = now_rfc3339()
    rot = status.setdefault("credentials", {}).setdefault("rotation", {})
    for c in PHASED:
        entry = rot.setdefault(c, {})
        if op == ROTATE_START:
            entry.update(phase="Preparing", lastInitiationTime=now)
            entry.pop("lastInitiationFinishedTime", None)
        else:
            entry.update(phase="Completing", lastCompletionTriggeredTime=now)
    if op == ROTATE_START:
        for c in UNPHASED:
            rot.setdefault(c, {})["lastInitiationTime"] = now


def finish(status: Obj, op: str | None, shoot: Obj) -> None:
    """When the reconcile succeeds: the rotation's phase is reached; hibernation is what the spec says."""
    now = now_rfc3339()
    status["hibernated"] = hibernation_enabled(shoot)
    if op not in ROTATIONS:
        return
    rot = status.setdefault("credentials", {}).setdefault("rotation", {})
    for c in PHASED:
        entry = rot.setdefault(c, {})
        if op == ROTATE_START:
            entry.update(phase="Prepared", lastInitiationFinishedTime=now)
        else:
            entry.update(phase="Completed", lastCompletionTime=now)
    if op == ROTATE_START:
        for c in UNPHASED:
            rot.setdefault(c, {})["lastCompletionTime"] = now


def task_names(op: str | None, shoot: Obj, status: Obj) -> tuple[str, ...]:
    """Extra flow tasks a day-2 reconcile runs (shown in ``lastOperation.description``)."""
    if op == ROTATE_START:
        return ("Generating new CAs and keys", "Rolling out worker nodes with new credentials")
    if op == ROTATE_COMPLETE:
        return ("Dropping old CAs from the bundle", "Removing old service account and encryption keys")
    if hibernation_enabled(shoot) and not status.get("hibernated"):
        return ("Hibernating control plane", "Scaling worker pools to zero")
    if not hibernation_enabled(shoot) and status.get("hibernated"):
        return ("Waking up control plane", "Scaling worker pools up")
    return ()
