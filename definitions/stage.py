"""Konfidence's Stage as its API defines it: the vector reference and what "deployed and ready" means.

A Stage (``konfidence.cloud/v1alpha1``) has one spec field, ``spec.vector``: the OCM reference
``<repository>//<component>:<version>`` (Konfidence parses it with OCM's ``compref``; the repository may
carry a scheme, e.g. ``https://registry.example/ocm//example.org/app:1.2.0``). Its status has
``conditions`` (VectorDeploymentCreated, VectorDeployed, VectorMigrated, Ready), ``vectorHistory``
(references, oldest first) and ``latestVectorDeploymentRef``. Pure data and logic: importable in the
workflow sandbox; the activity in ``activities/konfidence.py`` does the I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

#: OCM component names: a DNS domain, then at least one path segment (OCM's ComponentRegex).
COMPONENT = re.compile(r"^[a-z][-a-z0-9]*([.][a-z][-a-z0-9]*)*[.][a-z]{2,}(/[a-z][-a-z0-9_]*([.][a-z][-a-z0-9_]*)*)+$")
#: Versions are OCI tags (Konfidence parses permissively: semver or aliases such as ``latest``).
VERSION = re.compile(r"^[\w][\w.+-]{0,127}$")

VECTOR_DEPLOYMENT_CREATED = "VectorDeploymentCreated"
VECTOR_DEPLOYED = "VectorDeployed"
VECTOR_MIGRATED = "VectorMigrated"
READY = "Ready"


class VectorReferenceError(ValueError):
    """A Stage vector that is not ``<repository>//<component>:<version>``."""


class VectorRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    repository: str
    component: str
    version: str

    @property
    def reference(self) -> str:
        return f"{self.repository}//{self.component}:{self.version}"

    def as_vector(self) -> dict[str, Any]:
        """The dict form promotion results carry (``version`` is what rollback compares)."""
        return {
            "component": self.component,
            "version": self.version,
            "repository": self.repository,
            "reference": self.reference,
        }


def parse_vector(reference: str) -> VectorRef:
    """Parse an OCM reference as Konfidence does; raises :class:`VectorReferenceError` naming the problem."""
    if not isinstance(reference, str) or not reference.strip():
        raise VectorReferenceError("an empty vector; want <repository>//<component>:<version>")
    text = reference.strip()
    if "::" in text.split("//", 1)[0]:
        text = text.split("::", 1)[1]  # a typed repository ("OCIRepository::host/path")
    repository, sep, rest = text.rpartition("//")
    if not sep or not repository or repository.endswith(":"):
        raise VectorReferenceError(f"{reference!r} has no repository; want <repository>//<component>:<version>")
    if "@" in rest:
        rest = rest.split("@", 1)[0]  # a digest pin does not change which version is meant
    component, sep, version = rest.rpartition(":")
    if not sep:
        raise VectorReferenceError(f"{reference!r} names no version; want <repository>//<component>:<version>")
    if not COMPONENT.match(component):
        raise VectorReferenceError(
            f"{reference!r}: {component!r} is not an OCM component name (a DNS domain and a path, e.g. example.org/app)"
        )
    if not VERSION.match(version):
        raise VectorReferenceError(f"{reference!r}: {version!r} is not a version (an OCI tag)")
    return VectorRef(repository=repository, component=component, version=version)


def vector_ref(repository: str, component: str, version: str) -> VectorRef:
    """Build and check a reference from its parts (repository as published, scheme kept)."""
    if not repository:
        raise VectorReferenceError(
            f"no repository for {component}:{version}: set the promotion's "
            "artifact.repository (or promotion.run's repository)"
        )
    return parse_vector(f"{repository.rstrip('/')}//{component}:{version}")


def condition(stage: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in (stage.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return {}


def history(stage: dict[str, Any]) -> list[str]:
    return [h for h in (stage.get("status") or {}).get("vectorHistory") or [] if isinstance(h, str)]


def last_verified(stage: dict[str, Any], component: str | None = None, version: str | None = None) -> str | None:
    """The newest reference in ``vectorHistory`` (of ``component``, at ``version`` when given)."""
    for ref in reversed(history(stage)):
        try:
            parsed = parse_vector(ref)
        except VectorReferenceError:
            continue
        if component is not None and parsed.component != component:
            continue
        if version is not None and parsed.version != version:
            continue
        return ref
    return None


@dataclass(frozen=True)
class Readiness:
    state: str  # "ready", "progressing", "failed", "replaced"
    reason: str = ""
    message: str = ""

    def describe(self) -> str:
        return f"{self.reason}: {self.message}".strip(": ") or self.state


def readiness(stage: dict[str, Any], reference: str, generation: int) -> Readiness:
    """Whether ``reference``, written at ``generation``, is deployed and ready on this Stage.

    Ready means, for the generation written or a later one that still points at ``reference``: the
    ``VectorDeployed`` and ``Ready`` conditions are True with ``observedGeneration`` at least that
    generation, and the reference is the newest entry of ``vectorHistory``. A ``VectorDeployed`` False
    whose reason ends in ``Failed`` is a failed deployment; a spec that moved on to another vector was
    replaced by another writer.
    """
    spec_vector = (stage.get("spec") or {}).get("vector")
    current = int((stage.get("metadata") or {}).get("generation") or 0)
    if spec_vector != reference and current > generation:
        return Readiness("replaced", "VectorReplaced", f"the Stage now points at {spec_vector}")
    deployed, ready = condition(stage, VECTOR_DEPLOYED), condition(stage, READY)

    def observed(c: dict[str, Any]) -> bool:
        return int(c.get("observedGeneration") or 0) >= generation

    if observed(deployed) and deployed.get("status") == "False" and str(deployed.get("reason", "")).endswith("Failed"):
        return Readiness("failed", str(deployed.get("reason")), str(deployed.get("message", "")))
    hist = history(stage)
    if (
        observed(deployed)
        and deployed.get("status") == "True"
        and observed(ready)
        and ready.get("status") == "True"
        and hist[-1:] == [reference]
    ):
        return Readiness("ready", str(ready.get("reason", READY)), str(ready.get("message", "")))
    source = ready if ready else deployed
    if not source:
        return Readiness("progressing", "NoConditions", "the Stage controller has not reported yet")
    if not observed(source):
        return Readiness(
            "progressing", "NotObserved", f"the Stage controller has not observed generation {generation} yet"
        )
    return Readiness("progressing", str(source.get("reason", "")), str(source.get("message", "")))
