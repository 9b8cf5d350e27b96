"""What operators declare for the server lifecycle: sites and their BMCs (addresses, credentials by
reference, TLS), and what to do to a server when it is provisioned (image, BIOS, firmware).

Pure pydantic, imported inside the Temporal workflow sandbox. Passwords never appear here: a BMC's
credentials are a *reference* (`env:NAME`, `file:/path`, `k8s:ns/secret#key`) resolved by the
activity that talks to the BMC.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from definitions.secrets import SecretRef, check_secret_ref

__all__ = [
    "AddressRange",
    "BmcConnection",
    "BmcCredentials",
    "BmcEndpointSpec",
    "FirmwareUpdate",
    "ImageSpec",
    "IronCoreSite",
    "ProvisionSpec",
    "SiteDefinition",
    "TlsOptions",
    "normalise_url",
]


class _Strict(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid")


class BmcCredentials(_Strict):
    """How to log in to a BMC. The password is a reference, resolved only inside activities."""

    username: str
    password_ref: SecretRef = Field(description="env:NAME, file:/path or k8s:namespace/secret#key")
    auth: Literal["auto", "basic", "session"] = Field(
        default="auto", description="auto: Redfish session if the BMC offers one, else basic auth"
    )

    def problems(self, where: str) -> list[str]:
        try:
            check_secret_ref(self.password_ref)
        except ValueError as exc:
            return [f"{where}.password_ref {exc}"]
        return []


class TlsOptions(_Strict):
    """Server certificate checking for https BMCs: a CA bundle, the system store, or explicitly off."""

    ca_bundle: str | None = Field(default=None, description="path of a PEM CA bundle on the worker")
    insecure: bool = Field(default=False, description="skip certificate checks (lab BMCs only)")

    def problems(self, where: str) -> list[str]:
        if self.ca_bundle and self.insecure:
            return [f"{where}: give either ca_bundle or insecure, not both"]
        return []

    def verify(self) -> bool | str:
        if self.insecure:
            return False
        return self.ca_bundle or True


class BmcConnection(_Strict):
    """Everything an activity needs to reach one BMC (no secret, only its reference)."""

    url: str = Field(description="http(s)://host[:port] of the Redfish service")
    name: str = ""
    credentials: BmcCredentials | None = None
    tls: TlsOptions = Field(default_factory=TlsOptions)
    timeout_s: float = Field(default=30.0, gt=0, description="connect+read timeout per request")
    probe: bool = Field(
        default=False,
        description="an address from a range that may hold no BMC: short connect timeout, one retry",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        # Normalise only; never raise here (a decode error inside a workflow retries forever).
        return normalise_url(v)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.url})" if self.name and self.name != self.url else self.url


class BmcEndpointSpec(_Strict):
    """One BMC in a site definition; `credentials` names a group of the site or is given inline."""

    url: str
    name: str = ""
    credentials: str | BmcCredentials | None = None
    tls: TlsOptions | None = None
    labels: dict[str, str] = Field(
        default_factory=dict, description="labels of the servers behind this BMC (rollout selectors match them)"
    )


class AddressRange(_Strict):
    """A range of BMC addresses: every address from `start` to `end` on each of `ports`."""

    start: str
    end: str
    ports: list[int] = Field(default_factory=lambda: [443])
    scheme: Literal["http", "https"] = "https"
    credentials: str | BmcCredentials | None = None
    tls: TlsOptions | None = None
    labels: dict[str, str] = Field(default_factory=dict, description="labels of the servers in this range")

    def problems(self, where: str) -> list[str]:
        try:
            a, b = ipaddress.ip_address(self.start), ipaddress.ip_address(self.end)
        except ValueError as exc:
            return [f"{where}: {exc}"]
        if a.version != b.version or int(b) < int(a):
            return [f"{where}: address range {self.start}..{self.end} is empty or mixes IP versions"]
        if int(b) - int(a) >= 4096:
            return [f"{where}: address range {self.start}..{self.end} has more than 4096 addresses"]
        if not self.ports or any(not 0 < p < 65536 for p in self.ports):
            return [f"{where}: ports must be 1..65535"]
        return []

    def urls(self) -> list[str]:
        a, b = int(ipaddress.ip_address(self.start)), int(ipaddress.ip_address(self.end))
        out: list[str] = []
        for n in range(a, b + 1):
            addr = ipaddress.ip_address(n)
            host = f"[{addr}]" if addr.version == 6 else str(addr)
            out.extend(f"{self.scheme}://{host}:{port}" for port in self.ports)
        return out


DEFAULT_IRONCORE_IMAGE = "ghcr.io/gardenlinux/gardenlinux:1592.9"


class IronCoreSite(_Strict):
    """How a site with ``backend: ironcore`` asks metal-operator for servers (ServerClaim fields)."""

    namespace: str = Field(default="default", description="namespace of the ServerClaims and ignition Secrets")
    image: str = Field(
        default=DEFAULT_IRONCORE_IMAGE,
        description="OCI reference of the Garden Linux image metal-operator boots (ServerClaim.spec.image)",
    )
    ignition: str | None = Field(
        default=None,
        description="Ignition config for the first boot (stored as the claim's Secret); None: a minimal "
        "config that sets the host name",
    )
    discovery_timeout_s: float = Field(
        default=300.0, gt=0, description="how long metal-operator may take to report a BMC's Server Available"
    )
    bind_timeout_s: float = Field(default=300.0, gt=0, description="how long a claim may stay unbound")
    power_timeout_s: float = Field(default=600.0, gt=0)


class SiteDefinition(_Strict):
    """A site's BMCs: explicit endpoints and/or address ranges, with credential groups by name.

    ``backend`` says who drives the servers: ``redfish`` (the orchestrator, through each BMC) or
    ``ironcore`` (metal-operator owns them; the orchestrator registers BMCs and claims servers)."""

    name: str
    backend: Literal["redfish", "ironcore"] = "redfish"
    ironcore: IronCoreSite = Field(default_factory=IronCoreSite)
    credentials: dict[str, BmcCredentials] = Field(default_factory=dict)
    default_credentials: str | None = None
    tls: TlsOptions = Field(default_factory=TlsOptions)
    bmcs: list[BmcEndpointSpec] = Field(default_factory=list)
    ranges: list[AddressRange] = Field(default_factory=list)
    timeout_s: float = Field(default=20.0, gt=0)

    def problems(self) -> list[str]:
        """Everything wrong with the definition, each naming where. Checked by the CLI and validation
        before start, and by the discovery workflow (as a non-retryable error): never in a pydantic
        validator, because a model that fails to decode inside a workflow retries the task forever."""
        out: list[str] = []
        if self.default_credentials and self.default_credentials not in self.credentials:
            out.append(f"default_credentials {self.default_credentials!r} is not in credentials")
        for name, cred in self.credentials.items():
            out += cred.problems(f"credentials.{name}")
        out += self.tls.problems("tls")
        for i, bmc in enumerate(self.bmcs):
            parts = urlsplit(bmc.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                out.append(f"bmcs[{i}]: url {bmc.url!r} must look like https://host[:port]")
            if isinstance(bmc.credentials, str) and bmc.credentials not in self.credentials:
                out.append(f"bmcs[{i}] ({bmc.url}): unknown credentials group {bmc.credentials!r}")
            if isinstance(bmc.credentials, BmcCredentials):
                out += bmc.credentials.problems(f"bmcs[{i}].credentials")
            if bmc.tls:
                out += bmc.tls.problems(f"bmcs[{i}].tls")
        for i, rng in enumerate(self.ranges):
            out += rng.problems(f"ranges[{i}]")
            if isinstance(rng.credentials, str) and rng.credentials not in self.credentials:
                out.append(f"ranges[{i}]: unknown credentials group {rng.credentials!r}")
            if isinstance(rng.credentials, BmcCredentials):
                out += rng.credentials.problems(f"ranges[{i}].credentials")
        if out:
            return out
        seen: dict[str, str] = {}
        for where, conn in self._targets():
            if conn.url in seen:
                out.append(f"duplicate BMC {conn.url}: listed at {seen[conn.url]} and at {where}")
            seen.setdefault(conn.url, where)
        if not seen:
            out.append("the site lists no BMCs (give bmcs or ranges)")
        if self.backend == "ironcore" and self.ranges:
            out.append("backend ironcore registers each BMC with metal-operator: list them under bmcs, not ranges")
        return out

    def _creds(self, c: str | BmcCredentials | None) -> BmcCredentials | None:
        if isinstance(c, BmcCredentials):
            return c
        name = c or self.default_credentials
        return self.credentials.get(name) if name else None

    def _targets(self) -> list[tuple[str, BmcConnection]]:
        out = []
        for i, bmc in enumerate(self.bmcs):
            conn = BmcConnection(
                url=bmc.url,
                name=bmc.name or bmc.url,
                credentials=self._creds(bmc.credentials),
                tls=bmc.tls or self.tls,
                timeout_s=self.timeout_s,
            )
            out.append((f"bmcs[{i}]", conn))
        for i, rng in enumerate(self.ranges):
            for url in rng.urls():
                conn = BmcConnection(
                    url=url,
                    name=url,
                    credentials=self._creds(rng.credentials),
                    tls=rng.tls or self.tls,
                    timeout_s=self.timeout_s,
                    probe=True,
                )
                out.append((f"ranges[{i}]", conn))
        return out

    def bmc_labels(self) -> dict[str, dict[str, str]]:
        """Labels per (normalised) BMC URL, from ``bmcs[].labels`` and ``ranges[].labels``."""
        out: dict[str, dict[str, str]] = {}
        for rng in self.ranges:
            if rng.labels:
                for url in rng.urls():
                    out[normalise_url(url)] = dict(rng.labels)
        for bmc in self.bmcs:
            if bmc.labels:
                out[normalise_url(bmc.url)] = dict(bmc.labels)
        return out

    def connections(self) -> list[BmcConnection]:
        """Every BMC of the site, expanded and with its credentials reference attached."""
        return [conn for _, conn in self._targets()]


def normalise_url(v: str) -> str:
    """scheme://host:port, lower case, default port made explicit (so duplicates compare equal)."""
    parts = urlsplit(v.strip())
    if parts.scheme and parts.hostname:
        try:
            port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
        except ValueError:
            return v.strip().rstrip("/")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return f"{parts.scheme.lower()}://{host.lower()}" + (f":{port}" if port else "")
    return v.strip().rstrip("/")


class ImageSpec(_Strict):
    url: str = Field(description="http(s) URL of the Garden Linux ISO the BMC mounts")
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class FirmwareUpdate(_Strict):
    image_uri: str
    targets: list[str] = Field(default_factory=list, description="@odata.id of the inventory items")
    component: str = Field(default="", description="FirmwareInventory id whose version shows success")
    version: str = Field(default="", description="version expected afterwards; equal -> step skipped")
    transfer_protocol: str | None = None


class ProvisionSpec(_Strict):
    """What to do to a server: every field is optional, an absent one is a skipped step."""

    image: ImageSpec | None = None
    bios_attributes: dict[str, str | int | bool] = Field(default_factory=dict)
    firmware: list[FirmwareUpdate] = Field(default_factory=list)
    graceful_shutdown_timeout_s: int = Field(default=120, ge=0)
    power_timeout_s: int = Field(default=600, ge=10)
    report_in_timeout_s: int = Field(default=1800, ge=1)
    firmware_timeout_s: int = Field(default=3600, ge=10)
    boot_mode: Literal["UEFI", "Legacy"] = "UEFI"
