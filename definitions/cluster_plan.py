"""Kubernetes version arithmetic and upgrade planning against a Gardener CloudProfile.

Pure functions over plain data (no I/O), so the planner runs the same in an activity, in the
`apeiro cluster plan` command and in tests, and the simulated Gardener admission shares the rules.

Gardener's rules the plan obeys: no downgrade; the control plane moves one minor at a time; each step
must be a version the CloudProfile offers and that is not expired; preview versions only when
allowed; worker pools may trail the control plane by at most three minors and never lead it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

MAX_WORKER_SKEW = 3

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$")


class VersionError(ValueError):
    """A version string or an upgrade request that cannot be satisfied; the message says why."""


def parse_version(version: str) -> tuple[int, int, int]:
    m = _VERSION_RE.match(str(version).strip())
    if not m:
        raise VersionError(
            f"{version!r} is not a Kubernetes version (expected MAJOR.MINOR.PATCH, e.g. 1.31.2)"
        )
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def minor_of(version: str) -> tuple[int, int]:
    major, minor, _ = parse_version(version)
    return major, minor


def minor_distance(old: str, new: str) -> int:
    """How many minors ``new`` is ahead of ``old`` (negative when behind; majors count as 100)."""
    (a, b), (c, d) = minor_of(old), minor_of(new)
    return (c - a) * 100 + (d - b)


class ProfileVersion(BaseModel):
    version: str
    classification: str = "supported"
    expirationDate: str | None = None

    def expired(self, now: datetime) -> bool:
        return bool(self.expirationDate) and parse_time(self.expirationDate or "") <= now

    def expires_within(self, now: datetime, days: float) -> bool:
        if not self.expirationDate:
            return False
        return (parse_time(self.expirationDate) - now).total_seconds() <= days * 86400


def parse_time(value: str) -> datetime:
    value = value.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    return datetime.fromisoformat(value)


def profile_kubernetes_versions(profile: dict[str, Any]) -> list[ProfileVersion]:
    raw = ((profile.get("spec") or {}).get("kubernetes") or {}).get("versions") or []
    return sorted((ProfileVersion.model_validate(v) for v in raw), key=lambda v: parse_version(v.version))


def profile_image_versions(profile: dict[str, Any], image: str) -> list[ProfileVersion]:
    for img in (profile.get("spec") or {}).get("machineImages") or []:
        if img.get("name") == image:
            return sorted(
                (ProfileVersion.model_validate(v) for v in img.get("versions") or []),
                key=lambda v: parse_version(v.version),
            )
    return []


class PlanStep(BaseModel):
    """One patch of the upgrade: the control plane to a version, or worker pools/images."""

    target: str = Field(description="controlPlane, or worker:<pool>")
    kubernetes_version: str | None = None
    machine_image: str | None = None
    machine_image_version: str | None = None
    reason: str = ""


class UpgradePlan(BaseModel):
    current: str
    target: str
    steps: list[PlanStep] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list, description="versions passed over, with the reason")

    def versions(self) -> list[str]:
        return [
            s.kubernetes_version for s in self.steps if s.target == "controlPlane" and s.kubernetes_version
        ]


def plan_control_plane(
    versions: list[ProfileVersion], current: str, target: str, now: datetime, allow_preview: bool = False
) -> UpgradePlan:
    """The control-plane path from ``current`` to ``target``, one minor per step.

    Each intermediate minor uses its highest usable patch (not expired, not preview unless allowed).
    Raises VersionError for a downgrade, a target absent or expired, or a minor with no usable version.
    """
    cur, tgt = parse_version(current), parse_version(target)
    if tgt < cur:
        raise VersionError(
            f"cannot downgrade from {current} to {target}: Gardener forbids Kubernetes downgrades"
        )
    by_version = {v.version: v for v in versions}
    entry = by_version.get(target)
    if entry is None:
        offered = ", ".join(v.version for v in versions) or "none"
        raise VersionError(f"target version {target} is not offered by the CloudProfile (offered: {offered})")
    if entry.expired(now):
        raise VersionError(
            f"target version {target} expired on {entry.expirationDate}; choose a newer version"
        )
    if entry.classification == "preview" and not allow_preview:
        raise VersionError(f"target version {target} is a preview version; set allow_preview to use it")
    plan = UpgradePlan(current=current, target=target)
    if tgt == cur:
        return plan
    if tgt[0] != cur[0]:
        raise VersionError(f"cannot plan across major versions ({current} -> {target})")
    for minor in range(cur[1] + 1 if tgt[1] > cur[1] else cur[1], tgt[1] + 1):
        if minor == tgt[1]:
            plan.steps.append(
                PlanStep(target="controlPlane", kubernetes_version=target, reason="target version")
            )
            break
        candidates = []
        for v in versions:
            major, mnr, _ = parse_version(v.version)
            if (major, mnr) != (cur[0], minor):
                continue
            if v.expired(now):
                plan.skipped.append(f"{v.version}: expired on {v.expirationDate}")
            elif v.classification == "preview" and not allow_preview:
                plan.skipped.append(f"{v.version}: preview")
            else:
                candidates.append(v)
        if not candidates:
            raise VersionError(
                f"cannot plan {current} -> {target}: no usable {cur[0]}.{minor}.x version "
                f"in the CloudProfile "
                f"(Gardener moves the control plane one minor at a time; skipped: "
                f"{'; '.join(plan.skipped) or 'none offered'})"
            )
        best = max(candidates, key=lambda v: parse_version(v.version))
        plan.steps.append(
            PlanStep(
                target="controlPlane",
                kubernetes_version=best.version,
                reason=f"intermediate minor {cur[0]}.{minor}",
            )
        )
    return plan


def latest_image_version(
    versions: list[ProfileVersion], now: datetime, allow_preview: bool = False
) -> str | None:
    usable = [v for v in versions if not v.expired(now) and (allow_preview or v.classification != "preview")]
    return max(usable, key=lambda v: parse_version(v.version)).version if usable else None


def worker_skew_problem(control_plane: str, worker: str) -> str | None:
    """Why a worker pool version is not allowed beside the control plane version, or None."""
    d = minor_distance(worker, control_plane)
    if parse_version(worker) > parse_version(control_plane):
        return (
            f"worker pool version {worker} must not be newer than the control plane version {control_plane}"
        )
    if d > MAX_WORKER_SKEW:
        return (
            f"worker pool version {worker} must not be more than {MAX_WORKER_SKEW} minor versions older "
            f"than the control plane version {control_plane}"
        )
    return None


# --- readiness -------------------------------------------------------------------------------------

#: lastErrors codes after which Gardener does not retry by itself (the operation ends Failed).
NON_RETRYABLE_CODES = frozenset(
    {
        "ERR_INFRA_UNAUTHENTICATED",
        "ERR_INFRA_UNAUTHORIZED",
        "ERR_INFRA_DEPENDENCIES",
        "ERR_INFRA_QUOTA_EXCEEDED",
        "ERR_INFRA_RATE_LIMITS_EXCEEDED",
        "ERR_CONFIGURATION_PROBLEM",
        "ERR_PROBLEMATIC_WEBHOOK",
    }
)


class Readiness(BaseModel):
    """What a Shoot's status says, judged by the only correct rule:
    generation == observedGeneration, lastOperation Succeeded, and every condition True."""

    ready: bool
    failed: bool = False
    state: str = ""
    operation: str = ""
    progress: int = 0
    description: str = ""
    codes: list[str] = Field(default_factory=list)
    generation: int = 0
    observed_generation: int = 0
    not_true: list[str] = Field(default_factory=list, description="conditions that are not True")
    resource_version: str = ""
    observed_at: float = Field(default=0.0, description="epoch seconds when a waiter saw this state")

    def summary(self) -> str:
        parts = [f"{self.operation or 'no operation'} {self.state or 'pending'} at {self.progress}%"]
        if self.generation != self.observed_generation:
            parts.append(
                f"generation {self.generation} not yet observed (observed {self.observed_generation})"
            )
        if self.not_true:
            parts.append("conditions not True: " + ", ".join(self.not_true))
        if self.codes:
            parts.append("codes: " + ", ".join(self.codes))
        if self.description:
            parts.append(f"last task: {self.description}")
        return "; ".join(parts)


def shoot_readiness(shoot: dict[str, Any]) -> Readiness:
    meta = shoot.get("metadata") or {}
    status = shoot.get("status") or {}
    last = status.get("lastOperation") or {}
    conditions = status.get("conditions") or []
    codes = sorted({c for e in status.get("lastErrors") or [] for c in e.get("codes") or []})
    not_true = [f"{c.get('type')}={c.get('status')}" for c in conditions if c.get("status") != "True"]
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    state = str(last.get("state") or "")
    ready = generation == observed and state == "Succeeded" and bool(conditions) and not not_true
    return Readiness(
        ready=ready,
        failed=state == "Failed" and generation == observed,
        state=state,
        operation=str(last.get("type") or ""),
        progress=int(last.get("progress") or 0),
        description=str(last.get("description") or ""),
        codes=codes,
        generation=generation,
        observed_generation=observed,
        not_true=not_true,
        resource_version=str(meta.get("resourceVersion") or ""),
    )


# --- maintenance windows ---------------------------------------------------------------------------


def _window_time(value: str) -> tuple[int, int]:
    """`HHMMSS+ZZZZ` -> (seconds after midnight UTC, 0)."""
    m = re.match(r"^(\d{2})(\d{2})(\d{2})([+-])(\d{2})(\d{2})$", value)
    if not m:
        raise VersionError(f"maintenance time {value!r} is not HHMMSS+ZZZZ (e.g. 220000+0000)")
    h, mi, s, sign, zh, zm = m.groups()
    offset = (int(zh) * 3600 + int(zm) * 60) * (1 if sign == "+" else -1)
    return (int(h) * 3600 + int(mi) * 60 + int(s) - offset) % 86400, 0


def in_maintenance_window(now: datetime, begin: str, end: str) -> bool:
    b, _ = _window_time(begin)
    e, _ = _window_time(end)
    t = now.hour * 3600 + now.minute * 60 + now.second
    return b <= t < e if b <= e else (t >= b or t < e)


def seconds_until_window(now: datetime, begin: str, end: str) -> float:
    if in_maintenance_window(now, begin, end):
        return 0.0
    b, _ = _window_time(begin)
    t = now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6
    return (b - t) % 86400
