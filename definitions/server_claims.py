"""IronCore provisioning through metal-operator: a ``ServerClaim`` asks for a server with an image.

With metal-operator a workload never powers or boots a server itself: it claims one (by name or label
selector) with the OS image and an ignition secret, metal-operator binds an Available server, boots it
and powers it as asked; deleting the claim releases the server. These are the activity contracts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class ClaimRequest(BaseModel):
    #: Claim name (deterministic, e.g. ``<site>-<server>``), so a retried activity finds its claim.
    name: str = Field(pattern=_NAME, max_length=253)
    namespace: str = Field(default="default", pattern=_NAME, max_length=63)
    #: OS image reference, e.g. ``ghcr.io/gardenlinux/gardenlinux:1877.0``.
    image: str = Field(min_length=1)
    #: Name of the Secret (same namespace) holding the ignition for the first boot.
    ignition_secret: str | None = None
    #: Claim this Server by name, or any Available one matching ``selector`` (labels).
    server: str | None = None
    selector: dict[str, str] = Field(default_factory=dict)
    power: Literal["On", "Off"] = "On"
    bind_timeout_seconds: float = Field(default=300.0, gt=0)
    power_timeout_seconds: float = Field(default=600.0, gt=0)


class ClaimResult(BaseModel):
    claim: str
    server: str
    power_state: str
    created: bool


class ReleaseRequest(BaseModel):
    name: str = Field(pattern=_NAME, max_length=253)
    namespace: str = Field(default="default", pattern=_NAME, max_length=63)
