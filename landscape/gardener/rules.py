"""Gardener's version and maintenance rules, as the simulated garden enforces them.

Written from Gardener's own documentation and validation code (gardener/gardener), not from the
orchestrator's planner, so a planner that misreads Gardener disagrees with this simulator the way it
would disagree with a real garden. Sources, per function:

- version parsing and comparison: Masterminds semver as Gardener uses it (``pkg/utils/version``);
  CloudProfile Kubernetes versions must match ``^([0-9]+\\.){2}[0-9]+$``
  (``pkg/api/core/validation/utils.go``);
- classifications: ``CurrentLifecycleClassification`` / ``VersionIsActive`` / ``VersionIsSupported``
  (``pkg/api/core/v1beta1/helper/cloudprofile.go``); the legacy ``classification`` + ``expirationDate``
  form becomes lifecycle stages; the ``lifecycle`` form is checked by ``validateExpirableVersion``
  (``pkg/api/core/validation/utils.go``);
- control plane updates (no downgrade, no skipped minor), worker pool updates (no downgrade, skips
  allowed unless in-place) and the worker/control-plane skew (``ValidateKubernetesVersionUpdate``,
  ``validateWorkerGroupAndControlPlaneKubernetesVersion`` in ``pkg/api/core/validation/shoot.go``);
- versions offered by the CloudProfile and expired versions (``validateKubernetesVersionConstraints``,
  ``validateMachineImagesConstraints`` in ``plugin/pkg/shoot/validator/admission.go``);
- version defaulting (``defaultKubernetesVersion``, ``getDefaultMachineImage`` in
  ``plugin/pkg/shoot/mutator/admission.go``);
- maintenance time windows (``pkg/apis/utils/timewindow/timewindow.go``; 30 min to 6 h,
  ``MaintenanceTimeWindowDuration{Minimum,Maximum}`` in ``pkg/apis/core/types_shoot.go``).

docs/cluster.md keeps the table of rules and sources.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Obj = dict[str, Any]

#: Masterminds semver as Gardener parses it: optional "v", 1-3 numeric parts, optional pre/build.
_SEMVER = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
#: CloudProfile Kubernetes versions: exactly major.minor.patch.
PROFILE_K8S_VERSION = re.compile(r"^([0-9]+\.){2}[0-9]+$")
#: Lifecycle classifications in their required order; "unavailable" is derived, never declared.
ORDER = ("preview", "supported", "deprecated", "expired")
UNAVAILABLE = "unavailable"
#: Worker pools may trail the control plane by at most this many minors (upstream: "at most three minor
#: versions behind control plane version"; the usage doc still says two, the code says three).
MAX_WORKER_MINOR_SKEW = 3
WINDOW_MIN = timedelta(minutes=30)
WINDOW_MAX = timedelta(hours=6)


class RuleError(ValueError):
    """A value Gardener's validation would not accept; the message is Gardener's detail."""


@dataclass(frozen=True, order=True)
class Semver:
    major: int
    minor: int
    patch: int
    pre: str = ""

    @classmethod
    def parse(cls, value: str) -> Semver:
        m = _SEMVER.match(str(value).strip())
        if not m:
            raise RuleError(f"Invalid Semantic Version: {value!r}")
        return cls(int(m[1]), int(m[2] or 0), int(m[3] or 0), m[4] or "")

    def key(self) -> tuple[int, int, int, int, str]:
        # A pre-release sorts before its release (semver §11).
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, self.pre)

    def inc_minor(self, times: int = 1) -> Semver:
        """Masterminds IncMinor: next minor, patch reset, pre-release dropped."""
        return Semver(self.major, self.minor + times, 0)


def compare(a: str, b: str) -> int:
    ka, kb = Semver.parse(a).key(), Semver.parse(b).key()
    return (ka > kb) - (ka < kb)


# --------------------------------------------------------------------------------------------------
# Classifications


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip().strip('"')
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def lifecycle(entry: Obj) -> list[tuple[str, datetime | None]]:
    """The version's lifecycle stages; the legacy form (classification, expirationDate) converted."""
    stages = entry.get("lifecycle") or []
    if stages:
        return [(str(s.get("classification")), _time(s["startTime"]) if s.get("startTime") else None) for s in stages]
    if entry.get("classification") is None and entry.get("expirationDate") is None:
        return []
    out: list[tuple[str, datetime | None]] = [(str(entry.get("classification") or "supported"), None)]
    if entry.get("expirationDate"):
        out.append(("expired", _time(entry["expirationDate"])))
    return out


def classification(entry: Obj, now: datetime) -> str:
    """The current classification: the last stage whose start time is before ``now`` ("unavailable"
    before the first stage; "supported" with no classification at all)."""
    stages = lifecycle(entry)
    if not stages:
        return "supported"
    current = UNAVAILABLE
    for name, start in stages:
        if start is None or start < now:
            current = name
    return current


def is_active(entry: Obj, now: datetime) -> bool:
    return classification(entry, now) not in ("expired", UNAVAILABLE)


def is_expired(entry: Obj, now: datetime) -> bool:
    return classification(entry, now) == "expired"


def kubernetes_versions(profile: Obj) -> list[Obj]:
    return list(((profile.get("spec") or {}).get("kubernetes") or {}).get("versions") or [])


def machine_images(profile: Obj) -> list[Obj]:
    return list((profile.get("spec") or {}).get("machineImages") or [])


def expirable_version_problems(entry: Obj, path: str) -> list[tuple[str, str, str]]:
    """validateExpirableVersion: legacy and lifecycle forms, each on its own, stages valid and ordered."""
    causes: list[tuple[str, str, str]] = []
    cls = entry.get("classification")
    stages = entry.get("lifecycle") or []
    if cls is not None and cls not in ORDER:
        causes.append(
            (
                f"{path}.classification",
                "FieldValueNotSupported",
                f'Unsupported value: "{cls}": supported values: ' + ", ".join(f'"{c}"' for c in sorted(ORDER)),
            )
        )
    if not stages and cls == "expired":
        causes.append(
            (f"{path}.classification", "FieldValueForbidden", "Forbidden: cannot specify `classification` expired")
        )
    if stages and (cls is not None or entry.get("expirationDate") is not None):
        causes.append(
            (
                path,
                "FieldValueForbidden",
                "Forbidden: cannot specify `classification` or `expirationDate` in combination with `lifecycle`",
            )
        )
    seen: set[str] = set()
    previous: datetime | None = None
    for i, stage in enumerate(stages):
        spath = f"{path}.lifecycle[{i}]"
        name = str(stage.get("classification"))
        if name not in ORDER:
            causes.append((f"{spath}.classification", "FieldValueNotSupported", f'Unsupported value: "{name}"'))
            continue
        if name in seen:
            causes.append((f"{spath}.classification", "FieldValueDuplicate", f'Duplicate value: "{name}"'))
        seen.add(name)
        prev = str(stages[i - 1].get("classification")) if i else ""
        if prev in ORDER and ORDER.index(prev) > ORDER.index(name):
            causes.append(
                (
                    f"{spath}.classification",
                    "FieldValueInvalid",
                    "lifecycle classifications not in expected order (preview, supported, deprecated, "
                    f"expired): {name} must be before {prev}",
                )
            )
        start = stage.get("startTime")
        if i == 0:
            previous = _time(start) if start else datetime.min.replace(tzinfo=UTC)
            continue
        if not start:
            causes.append(
                (
                    spath,
                    "FieldValueRequired",
                    "Required value: only the leading lifecycle elements can have the start time optional",
                )
            )
            continue
        if previous is not None and _time(start) < previous:
            causes.append((spath, "FieldValueInvalid", "lifecycle start times must be monotonically increasing"))
        previous = _time(start)
    return causes


def cloud_profile_problems(profile: Obj) -> list[tuple[str, str, str]]:
    """The CloudProfile checks the garden enforces (Kubernetes and machine image versions)."""
    causes: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for i, v in enumerate(kubernetes_versions(profile)):
        path = f"spec.kubernetes.versions[{i}]"
        version = str(v.get("version") or "")
        if not PROFILE_K8S_VERSION.match(version):
            causes.append(
                (
                    path,
                    "FieldValueInvalid",
                    f"all Kubernetes versions must match the regex {PROFILE_K8S_VERSION.pattern}",
                )
            )
        elif version in seen:
            causes.append((f"{path}.version", "FieldValueDuplicate", f'Duplicate value: "{version}"'))
        seen.add(version)
        causes += expirable_version_problems(v, path)
    for i, image in enumerate(machine_images(profile)):
        for j, v in enumerate(image.get("versions") or []):
            path = f"spec.machineImages[{i}].versions[{j}]"
            try:
                Semver.parse(str(v.get("version")))
            except RuleError as exc:
                causes.append((f"{path}.version", "FieldValueInvalid", str(exc)))
            causes += expirable_version_problems(v, path)
    return causes


# --------------------------------------------------------------------------------------------------
# Version updates and skew (static validation: 422)


def kubernetes_update_problem(new: str, old: str, *, skip_minor_allowed: bool) -> str | None:
    """ValidateKubernetesVersionUpdate: never down; the control plane (``skip_minor_allowed=False``)
    never to the minor after next or beyond."""
    if not new:
        return "cannot validate kubernetes version upgrade because it is unset"
    if compare(new, old) < 0:
        return "Forbidden: kubernetes version downgrade is not supported"
    if not skip_minor_allowed and compare(new, str_version(Semver.parse(old).inc_minor(2))) >= 0:
        return "Forbidden: kubernetes version upgrade cannot skip a minor version"
    return None


def worker_skew_problem(control_plane: str, worker: str) -> str | None:
    """validateWorkerGroupAndControlPlaneKubernetesVersion: a pool is never newer than the control
    plane and at most three minors behind it."""
    if compare(worker, control_plane) > 0:
        return "Forbidden: worker group kubernetes version must not be higher than control plane version"
    limit = Semver.parse(worker).inc_minor(MAX_WORKER_MINOR_SKEW + 1)
    if compare(control_plane, str_version(limit)) >= 0:
        return (
            "Forbidden: worker group kubernetes version must be at most three minor versions behind "
            "control plane version"
        )
    return None


def str_version(v: Semver) -> str:
    return f"{v.major}.{v.minor}.{v.patch}" + (f"-{v.pre}" if v.pre else "")


# --------------------------------------------------------------------------------------------------
# Against the CloudProfile (admission: 403)


def kubernetes_constraint_problem(
    versions: Sequence[Obj], version: str, old_version: str, *, creating: bool, now: datetime
) -> str | None:
    """validateKubernetesVersionConstraints: an unchanged version is fine; a new one must be offered,
    and on create (or for a new pool) must be active (not expired, not unavailable)."""
    if version == old_version:
        return None
    valid: list[str] = []
    for entry in versions:
        if creating and not is_active(entry, now):
            continue
        if entry.get("version") == version:
            return None
        label = str(entry.get("version"))
        if classification(entry, now) == "preview":
            label += " (preview)"
        valid.append(label)
    return f'Unsupported value: "{version}": supported values: ' + ", ".join(f'"{v}"' for v in valid)


def machine_image_problem(
    images: Sequence[Obj], image: Obj, old_image: Obj | None, *, creating: bool, now: datetime
) -> str | None:
    """validateMachineImagesConstraints (architecture and in-place updates left out): the image
    version must be in the CloudProfile and active; an existing pool may move up to an expired one
    (the maintenance controller's force update needs that)."""
    if old_image is not None and image == old_image:
        return None
    name, version = image.get("name"), str(image.get("version") or "")
    offered: set[str] = set()
    active: set[str] = set()
    for mi in images:
        if name and mi.get("name") != name:
            continue
        for v in mi.get("versions") or []:
            ref = f"{mi.get('name')}:{v.get('version')}"
            offered.add(ref)
            if is_active(v, now):
                active.add(ref)
            elif not creating and is_expired(v, now) and old_image and old_image.get("version"):
                if compare(str(v.get("version")), str(old_image["version"])) >= 0:
                    active.add(ref)
    ref = f"{name}:{version}"
    if ref not in offered:
        return f'Unsupported value: "{version}": supported values: ' + ", ".join(f'"{v}"' for v in sorted(active))
    if ref not in active:
        return f"machine image version '{ref}' is expired, supported machine image versions are: {sorted(active)}"
    return None


# --------------------------------------------------------------------------------------------------
# Defaulting (the mutating admission plugin)


def default_kubernetes_version(versions: Iterable[Obj], version: str, now: datetime) -> str:
    """defaultKubernetesVersion: "1.31" (or "1", or nothing) becomes the highest *supported* version
    of that minor (or major, or overall); a full version is kept. RuleError when none qualifies."""
    parts = version.split(".") if version else []
    if len(parts) == 3:
        return version
    try:
        major = int(parts[0]) if parts and parts[0] else None
        minor = int(parts[1]) if len(parts) == 2 and parts[1] else None
    except ValueError:
        raise RuleError("must be a semantic version") from None
    best: Semver | None = None
    for entry in versions:
        if classification(entry, now) != "supported":
            continue
        v = Semver.parse(str(entry.get("version")))
        if (major is not None and v.major != major) or (minor is not None and v.minor != minor):
            continue
        if best is None or v.key() > best.key():
            best = v
    if best is None:
        raise RuleError(
            f"couldn't find a suitable version for {version}. Suitable versions have a non-expired expiration "
            "date and are no 'preview' versions. 'Preview'-classified versions have to be selected explicitly"
        )
    return str_version(best)


def default_machine_image(images: Sequence[Obj], image: Obj | None, now: datetime) -> Obj:
    """getDefaultMachineImage: the named image (or the first in the profile) at its latest version that
    is not preview and not expired, preferring one that is not deprecated; a full version is kept."""
    if not images:
        raise RuleError("the cloud profile does not contain any machine image - cannot create shoot cluster")
    name = (image or {}).get("name")
    chosen = next((mi for mi in images if mi.get("name") == name), None) if name else images[0]
    if chosen is None:
        raise RuleError("image is not supported")
    version = str((image or {}).get("version") or "")
    if version and any(str(v.get("version")) == version for v in chosen.get("versions") or []):
        return {**(image or {}), "name": chosen["name"], "version": version}
    parts = version.removeprefix("v").split(".") if version else []
    if len(parts) == 3:
        return {**(image or {}), "name": chosen["name"]}
    major = int(parts[0]) if parts and parts[0] else None
    minor = int(parts[1]) if len(parts) == 2 and parts[1] else None
    candidates = []
    for v in chosen.get("versions") or []:
        sv = Semver.parse(str(v.get("version")))
        if (major is not None and sv.major != major) or (minor is not None and sv.minor != minor):
            continue
        cls = classification(v, now)
        if cls in ("preview", "expired", UNAVAILABLE):
            continue
        candidates.append((cls != "deprecated", sv.key(), str(v.get("version"))))
    if not candidates:
        raise RuleError(f"failed to determine latest machine image from cloud profile for {chosen['name']}")
    return {**(image or {}), "name": chosen["name"], "version": max(candidates)[2]}


# --------------------------------------------------------------------------------------------------
# Maintenance time windows


@dataclass(frozen=True)
class TimeWindow:
    """A daily window in UTC; ``begin``/``end`` as Gardener writes them, ``HHMMSS+ZZZZ``."""

    begin: int  # seconds after midnight UTC
    end: int

    @classmethod
    def parse(cls, begin: str, end: str) -> TimeWindow:
        return cls(_window_time(begin, "begin"), _window_time(end, "end"))

    def duration(self) -> timedelta:
        """AdjustedEnd - AdjustedBegin: an end at or before the begin is on the next day."""
        seconds = self.end - self.begin
        return timedelta(seconds=seconds if seconds > 0 else seconds + 86400)

    def contains(self, now: datetime) -> bool:
        """Both ends included; a window whose end is before its begin spans midnight."""
        t = _seconds_of_day(now)
        if self.end < self.begin:
            return t <= self.end or t >= self.begin
        return self.begin <= t <= self.end

    def seconds_until_begin(self, now: datetime) -> float:
        """0 inside the window, else the seconds until it next opens."""
        if self.contains(now):
            return 0.0
        now = now.astimezone(UTC)
        begin = datetime.combine(now.date(), datetime.min.time(), UTC) + timedelta(seconds=self.begin)
        if begin <= now:
            begin += timedelta(days=1)
        return (begin - now).total_seconds()


def window_problems(begin: str, end: str) -> list[tuple[str, str, str]]:
    """ValidateMaintenance: parseable, between 30 minutes and 6 hours long."""
    path = "spec.maintenance.timeWindow"
    try:
        window = TimeWindow.parse(begin, end)
    except RuleError as exc:
        return [(f"{path}.begin/end", "FieldValueInvalid", str(exc))]
    duration = window.duration()
    if duration > WINDOW_MAX:
        return [(path, "FieldValueInvalid", f"time window must not be greater than {_go_duration(WINDOW_MAX)}")]
    if duration < WINDOW_MIN:
        return [(path, "FieldValueInvalid", f"time window must not be smaller than {_go_duration(WINDOW_MIN)}")]
    return []


def _go_duration(d: timedelta) -> str:
    """Go's time.Duration.String for whole minutes: 6h0m0s, 30m0s."""
    hours, rest = divmod(int(d.total_seconds()), 3600)
    return f"{hours}h{rest // 60}m0s" if hours else f"{rest // 60}m0s"


_WINDOW = re.compile(r"^(\d{2})(\d{2})(\d{2})([+-])(\d{2})(\d{2})$")


def _window_time(value: str, which: str) -> int:
    """Go layout ``150405-0700``, converted to UTC seconds after midnight."""
    m = _WINDOW.match(str(value))
    if not m or int(m[1]) > 23 or int(m[2]) > 59 or int(m[3]) > 59:
        raise RuleError(f"could not parse {which} time: could not parse the value into the maintenanceTime format")
    offset = (int(m[5]) * 3600 + int(m[6]) * 60) * (1 if m[4] == "+" else -1)
    return (int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) - offset) % 86400


def _seconds_of_day(now: datetime) -> int:
    t = now.astimezone(UTC)
    return t.hour * 3600 + t.minute * 60 + t.second
