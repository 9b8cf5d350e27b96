"""Fleet operations on servers: firmware, BIOS settings and Garden Linux image, each one server at a
time, usable in waves (``fleet.rollout`` with ``selector.kind: server``).

Each operation first reads the server's actual state (firmware inventory, BIOS attributes, the image
the site recorded for it) and compares it with the desired one: a server that already matches is
reported ``in-sync`` and not touched (no power change, no BMC write). A server *in use* (powered On:
an OS runs, and with it the server's workloads) is handled by the policy ``in_use``:

- ``skip``: not touched; reported ``skipped`` with the reason;
- ``drain``: graceful shutdown (the OS stops its workloads; a kubelet with graceful node shutdown
  evicts its pods first), up to ``drain_timeout_s`` for Off, then ForceOff; the change; power on again;
- ``proceed``: ForceOff at once (no drain), the change, power on again.

A server that is Off is not in use: firmware is updated and BIOS settings staged without powering it
on (they apply at its next power on); a re-image always boots it (the provisioning does).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from definitions.server.inventory import FirmwareItem
from definitions.server.messages import ServerRef
from definitions.server.site import FirmwareUpdate, ImageSpec, _Strict

__all__ = [
    "SERVER_OPERATIONS",
    "BiosUpdateInput",
    "FirmwareUpdateInput",
    "ImageRecord",
    "ImageRecordPut",
    "ImageUpdateInput",
    "InUsePolicy",
    "SelectServersInput",
    "ServerState",
    "ServerStateRead",
    "ServerTarget",
    "ServerUpdateInput",
    "ServerUpdateResult",
    "ironcore_refusal",
]

InUsePolicy = Literal["skip", "drain", "proceed"]

#: Step type -> the operation its workflow runs.
SERVER_OPERATIONS = {"server.firmware": "firmware", "server.bios": "bios", "server.image": "image"}


class ServerUpdateInput(_Strict):
    """One server, one operation. In a rollout, ``server``, ``site``, ``in_use`` and
    ``drain_timeout_s`` are set per target; ``with`` gives the rest."""

    operation: Literal["firmware", "bios", "image"]
    server: ServerRef
    site: str = Field(description="the site's name (where its image records live)")
    backend: Literal["redfish", "ironcore"] = "redfish"
    firmware: list[FirmwareUpdate] = Field(default_factory=list)
    bios_attributes: dict[str, str | int | bool] = Field(default_factory=dict)
    image: ImageSpec | None = None
    in_use: InUsePolicy = "skip"
    drain_timeout_s: int = Field(default=300, ge=1, description="graceful shutdown before ForceOff")
    power_timeout_s: int = Field(default=600, ge=10)
    firmware_timeout_s: int = Field(default=3600, ge=10)
    report_in_timeout_s: int = Field(default=1800, ge=1)

    @model_validator(mode="after")
    def _desired(self) -> ServerUpdateInput:
        """The desired state must be comparable with the actual one (drift)."""
        if self.operation == "firmware":
            if not self.firmware:
                raise ValueError("firmware: give at least one update")
            for i, up in enumerate(self.firmware):
                if not (up.component and up.version):
                    raise ValueError(
                        f"firmware[{i}]: component and version are required (the FirmwareInventory item "
                        "and version that show the update is done; drift compares them)"
                    )
        if self.operation == "bios" and not self.bios_attributes:
            raise ValueError("bios_attributes: give at least one attribute")
        if self.operation == "image" and self.image is None:
            raise ValueError("image: give {url, sha256} of the Garden Linux image")
        return self


class FirmwareUpdateInput(ServerUpdateInput):
    operation: Literal["firmware", "bios", "image"] = "firmware"


class BiosUpdateInput(ServerUpdateInput):
    operation: Literal["firmware", "bios", "image"] = "bios"


class ImageUpdateInput(ServerUpdateInput):
    operation: Literal["firmware", "bios", "image"] = "image"


class ServerUpdateResult(BaseModel):
    identity: str
    operation: str
    #: in-sync (nothing touched), updated, staged (BIOS pending until the next power on), skipped
    outcome: str
    drift: list[str] = Field(default_factory=list, description="what differed, e.g. 'BIOS 1.0.0 -> 2.0.0'")
    detail: str = ""
    power_before: str | None = None


class ImageRecord(BaseModel):
    """The Garden Linux image a site records for a server after imaging it."""

    url: str
    sha256: str
    by: str = Field(default="", description="the workflow that imaged it")


class ImageRecordPut(BaseModel):
    site: str
    identity: str
    record: ImageRecord


class ServerStateRead(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    server: ServerRef
    site: str
    firmware: bool = False
    bios: bool = False
    image: bool = False


class ServerState(BaseModel):
    """A server's actual state, as far as an operation needs it."""

    power_state: str | None = None
    firmware: list[FirmwareItem] = Field(default_factory=list)
    bios_attributes: dict[str, object] = Field(default_factory=dict)
    bios_pending: dict[str, object] = Field(default_factory=dict)
    image: ImageRecord | None = None


class SelectServersInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    site: str
    match_labels: dict[str, str] = Field(default_factory=dict)
    names: list[str] | None = None
    #: label sets per BMC URL from the site definition
    bmc_labels: dict[str, dict[str, str]] = Field(default_factory=dict)


class ServerTarget(BaseModel):
    identity: str
    bmc_url: str
    system_path: str
    labels: dict[str, str] = Field(default_factory=dict)


def ironcore_refusal(site: str, operation: str) -> str:
    """Why an operation cannot run on a site whose servers metal-operator owns."""
    what = {
        "firmware": "firmware updates",
        "bios": "BIOS settings",
        "image": "re-imaging a claimed server",
    }.get(operation, operation)
    tail = (
        "its API (metal.ironcore.dev/v1alpha1: BMC, BMCSecret, BMCUser, Endpoint, Server, ServerClaim, "
        "ServerBootConfiguration, ServerReadinessRule) has no BIOSSettings, BIOSVersion or BMCVersion "
        "resource, and a client never drives the BMC of a server metal-operator manages"
    )
    if operation == "image":
        tail = (
            "the image of a claimed server is its ServerClaim's spec.image, applied by metal-operator at "
            "claim time; release the claim and claim the server again (server.claim_one) with the new image"
        )
    return f"site {site} has backend ironcore: metal-operator owns its servers and {what} cannot run in waves: {tail}"
