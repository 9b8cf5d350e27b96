"""The server lifecycle: what operators declare (sites, BMCs, provisioning) and what comes back
(inventories, discovery results), plus the step types `server.*` a pipeline may use.

Pure pydantic and data only: this module is imported inside the Temporal workflow sandbox.
Passwords never appear here: a BMC's credentials are a *reference* (`env:NAME`, `file:/path`,
`k8s:ns/secret#key`) resolved by the activity that talks to the BMC.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from definitions import queues
from definitions.secrets import SecretRef, check_secret_ref
from definitions.steptypes import REGISTRY, StepKind, StepType

#: Error types a retry cannot fix; the pipeline engine and operators can match on them.
NON_RETRYABLE = (
    "BmcAuthenticationFailed",
    "BmcTlsError",
    "InvalidSiteDefinition",
    "ImageNotFound",
    "ImageChecksumMismatch",
    "ServerDidNotReportIn",
    "ServerBootFailed",
    "FirmwareUpdateFailed",
    "RedfishOperationRejected",
    "SecretNotFound",
    "SecretUnavailable",
)


class _Strict(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid")


# --------------------------------------------------------------------------------------------------
# What operators declare
# --------------------------------------------------------------------------------------------------


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


class AddressRange(_Strict):
    """A range of BMC addresses: every address from `start` to `end` on each of `ports`."""

    start: str
    end: str
    ports: list[int] = Field(default_factory=lambda: [443])
    scheme: Literal["http", "https"] = "https"
    credentials: str | BmcCredentials | None = None
    tls: TlsOptions | None = None

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


class SiteDefinition(_Strict):
    """A site's BMCs: explicit endpoints and/or address ranges, with credential groups by name."""

    name: str
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

    def connections(self) -> list[BmcConnection]:
        """Every BMC of the site, expanded and with its credentials reference attached."""
        return [conn for _, conn in self._targets()]


# --------------------------------------------------------------------------------------------------
# Inventory
# --------------------------------------------------------------------------------------------------


class ProcessorInfo(BaseModel):
    id: str
    socket: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    cores: int | None = None
    threads: int | None = None
    max_speed_mhz: int | None = None


class MemoryModule(BaseModel):
    id: str
    capacity_mib: int | None = None
    type: str | None = None
    speed_mhz: int | None = None
    location: str | None = None


class NicInfo(BaseModel):
    id: str
    mac: str | None = None
    link_status: str | None = None
    speed_mbps: int | None = None
    ipv4: list[str] = Field(default_factory=list)


class DriveInfo(BaseModel):
    id: str
    model: str | None = None
    serial: str | None = None
    capacity_bytes: int | None = None
    media_type: str | None = None
    protocol: str | None = None


class StorageControllerInfo(BaseModel):
    id: str
    name: str | None = None
    drives: list[DriveInfo] = Field(default_factory=list)


class FirmwareItem(BaseModel):
    id: str
    name: str | None = None
    version: str | None = None
    updateable: bool | None = None


class BootOption(BaseModel):
    id: str
    name: str | None = None
    path: str | None = None


class VirtualMediaSlot(BaseModel):
    id: str
    path: str
    media_types: list[str] = Field(default_factory=list)
    inserted: bool | None = None
    image: str | None = None


class SystemInventory(BaseModel):
    """Everything one system's BMC tells us. A part the BMC lacks (501, absent link) is None and is
    named in `unknown` with the reason, so a half-implemented BMC still yields an inventory."""

    bmc_url: str
    system_path: str
    id: str
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    sku: str | None = None
    uuid: str | None = None
    bios_version: str | None = None
    power_state: str | None = None
    processor_count: int | None = None
    processor_model: str | None = None
    logical_processor_count: int | None = None
    core_count: int | None = None
    processors: list[ProcessorInfo] | None = None
    memory_gib: float | None = None
    memory_modules: list[MemoryModule] | None = None
    nics: list[NicInfo] | None = None
    storage: list[StorageControllerInfo] | None = None
    firmware: list[FirmwareItem] | None = None
    bios_attributes: dict[str, object] | None = None
    boot_options: list[BootOption] | None = None
    boot_override: dict[str, str | None] | None = None
    virtual_media: list[VirtualMediaSlot] | None = None
    unknown: dict[str, str] = Field(default_factory=dict, description="part -> why it is unknown")

    @property
    def identity(self) -> str:
        return server_identity(self.uuid, self.serial, self.bmc_url, self.system_path)

    def fingerprint(self) -> str:
        """A hash of what describes the hardware (not volatile state such as power or media)."""
        data = self.model_dump(exclude={"power_state", "virtual_media", "boot_override", "unknown"})
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def summary(self) -> ServerSummary:
        return ServerSummary(
            identity=self.identity,
            bmc_url=self.bmc_url,
            system_path=self.system_path,
            uuid=self.uuid,
            serial=self.serial,
            manufacturer=self.manufacturer,
            model=self.model,
            power_state=self.power_state,
            processor_count=self.processor_count,
            logical_processor_count=self.logical_processor_count,
            memory_gib=self.memory_gib,
            macs=[n.mac for n in self.nics or [] if n.mac],
            bios_version=self.bios_version,
            fingerprint=self.fingerprint(),
            unknown=sorted(self.unknown),
        )


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


def server_identity(uuid: str | None, serial: str | None, bmc_url: str, system_path: str) -> str:
    """Stable identity: the system UUID, else the serial number, else BMC URL + system path."""
    if uuid and uuid.strip("0-") != "":
        return uuid.lower()
    if serial and serial.strip():
        return f"serial-{serial.strip()}"
    return f"bmc-{hashlib.sha256(f'{bmc_url}{system_path}'.encode()).hexdigest()[:16]}"


class BmcInventory(BaseModel):
    """One BMC's systems, or why the BMC could not be read."""

    bmc_url: str
    name: str = ""
    systems: list[SystemInventory] = Field(default_factory=list)
    error: str | None = None
    error_type: str | None = None


class ServerSummary(BaseModel):
    """The compact record a discovery returns per server (full inventories go to the inventory store)."""

    identity: str
    bmc_url: str
    system_path: str
    uuid: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    power_state: str | None = None
    processor_count: int | None = None
    logical_processor_count: int | None = None
    memory_gib: float | None = None
    macs: list[str] = Field(default_factory=list)
    bios_version: str | None = None
    fingerprint: str = ""
    unknown: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------------


class DiscoverInput(_Strict):
    site: SiteDefinition
    concurrency: int = Field(default=16, ge=1, le=500, description="inventory reads in flight at most")
    systems_per_batch: int = Field(default=100, ge=1, le=500, description="systems per child workflow")
    bmcs_per_batch: int = Field(default=50, ge=1, le=500, description="BMCs listed per child workflow")
    store_inventory: bool = Field(default=True, description="write full inventories to the inventory store")
    compare_with_previous: bool = True


class BmcProblem(BaseModel):
    bmc_url: str
    name: str = ""
    error_type: str
    message: str
    system_path: str | None = None


class ServerChange(BaseModel):
    identity: str
    fields: list[str]


class DiscoveryDiff(BaseModel):
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    changed: list[ServerChange] = Field(default_factory=list)
    previous_run: str | None = None


class DiscoverResult(BaseModel):
    site: str
    servers: list[ServerSummary]
    problems: list[BmcProblem] = Field(default_factory=list)
    bmcs_total: int = 0
    bmcs_reachable: int = 0
    addresses_without_bmc: int = Field(
        default=0, description="scanned range addresses where nothing answered (counted, not listed)"
    )
    diff: DiscoveryDiff = Field(default_factory=DiscoveryDiff)
    identities: list[str] = Field(default_factory=list)


class SystemTarget(BaseModel):
    """One system to inventory: its BMC connection (no secret) and Redfish path."""

    model_config = ConfigDict(hide_input_in_errors=True)

    bmc: BmcConnection
    system_path: str


class ListSystemsResult(BaseModel):
    bmc_url: str
    name: str = ""
    system_paths: list[str] = Field(default_factory=list)
    problem: BmcProblem | None = None


class ListBatchInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    bmcs: list[BmcConnection]
    concurrency: int = 16


class ListBatchResult(BaseModel):
    results: list[ListSystemsResult]
    #: Scanned range addresses where nothing answered (counted, not listed: a /20 of empty addresses
    #: would otherwise outgrow a 2 MiB payload).
    addresses_without_bmc: int = 0
    #: Their URLs only, so re-discovery does not report servers behind them as removed.
    silent_urls: list[str] = Field(default_factory=list)


class InventoryBatchInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    site: str
    targets: list[SystemTarget]
    concurrency: int = 16
    store_inventory: bool = True


class InventoryBatchResult(BaseModel):
    servers: list[ServerSummary] = Field(default_factory=list)
    problems: list[BmcProblem] = Field(default_factory=list)


class InventoryReadInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    site: str
    target: SystemTarget
    store: bool = True


class SiteSnapshot(BaseModel):
    site: str
    servers: list[ServerSummary] = Field(default_factory=list)
    run_id: str | None = None


# --------------------------------------------------------------------------------------------------
# Provisioning
# --------------------------------------------------------------------------------------------------


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


class ServerRef(_Strict):
    identity: str
    bmc: BmcConnection
    system_path: str


class ProvisionInput(_Strict):
    """One server to provision: a full reference, or a discovery summary plus its site (so a pipeline
    can fan out over `steps.discover.outputs.servers` with `forEach`)."""

    server: ServerRef | ServerSummary
    site: SiteDefinition | None = Field(default=None, description="needed when server is a summary")
    spec: ProvisionSpec = Field(default_factory=ProvisionSpec)

    def workflow_id(self) -> str:
        """The pipeline engine names the child workflow with this, so a second start joins the first."""
        return provision_workflow_id(self.server.identity)

    def resolve(self) -> ServerRef:
        """The server's BMC connection; raises ValueError saying what is missing."""
        if isinstance(self.server, ServerRef):
            return self.server
        if self.site is None:
            raise ValueError(f"server {self.server.identity} is a summary: give `site` to find its BMC")
        for conn in self.site.connections():
            if conn.url == normalise_url(self.server.bmc_url):
                return ServerRef(identity=self.server.identity, bmc=conn, system_path=self.server.system_path)
        raise ValueError(f"server {self.server.identity}: BMC {self.server.bmc_url} is not in site {self.site.name}")


class OsReport(BaseModel):
    """What the booted OS reports back (the callback signal's payload)."""

    identity: str = ""
    hostname: str | None = None
    image_sha256: str | None = None
    addresses: list[str] = Field(default_factory=list)


class ProvisionResult(BaseModel):
    identity: str
    steps_done: list[str] = Field(default_factory=list)
    steps_skipped: list[str] = Field(default_factory=list)
    os_report: OsReport | None = None
    power_state: str | None = None


class ProvisionFleetInput(_Strict):
    """Provision many servers (e.g. `steps.discover.outputs.servers`), one child workflow each."""

    servers: list[ServerSummary]
    site: SiteDefinition
    spec: ProvisionSpec = Field(default_factory=ProvisionSpec)
    concurrency: int = Field(default=10, ge=1, le=200)


class ProvisionFailure(BaseModel):
    identity: str
    error_type: str
    message: str


class ProvisionFleetResult(BaseModel):
    provisioned: list[str] = Field(default_factory=list)
    failed: list[ProvisionFailure] = Field(default_factory=list)


class PowerRequest(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    server: ServerRef
    action: str = Field(description="Redfish ResetType: On, GracefulShutdown, ForceOff, ...")
    #: Power state that means the action is already done (checked first, so a retry does nothing).
    done_when: str | None = None


class PowerWait(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    server: ServerRef
    target: Literal["On", "Off"]
    timeout_s: int = 600


class PowerWaitResult(BaseModel):
    reached: bool
    state: str | None = None
    waited_s: float = 0.0


class BiosApply(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    server: ServerRef
    attributes: dict[str, str | int | bool]


class StepOutcome(BaseModel):
    changed: bool
    detail: str = ""


class FirmwareStart(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    server: ServerRef
    update: FirmwareUpdate


class FirmwareStarted(BaseModel):
    skipped: bool
    task_uri: str | None = None
    detail: str = ""


class TaskWait(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    server: ServerRef
    task_uri: str
    timeout_s: int = 3600
    what: str = ""


class ImageCheck(BaseModel):
    image: ImageSpec


class ImageChecked(BaseModel):
    url: str
    sha256: str
    size_bytes: int


class MediaRequest(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    server: ServerRef
    image_url: str | None = Field(default=None, description="None: eject whatever is inserted")


class BootRequest(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    server: ServerRef
    target: str
    enabled: Literal["Once", "Continuous", "Disabled"]
    mode: Literal["UEFI", "Legacy"] | None = None


def provision_workflow_id(identity: str) -> str:
    """Workflow id of a server's provisioning: a second start for the same server joins the first."""
    return f"server-provision-{identity}"


# --------------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------------


class RegisterInput(_Strict):
    target: Literal["ironcore", "ironic"]
    servers: list[ServerSummary]
    site: SiteDefinition
    namespace: str = Field(default="default", description="IronCore: namespace of BMCSecret objects")
    ironic_endpoint: str | None = Field(default=None, description="Ironic API URL (None: from env)")
    provide: bool = Field(default=True, description="Ironic: move nodes on to `available`")
    deploy_image: ImageSpec | None = Field(
        default=None,
        description="Ironic: deploy this ISO through Ironic's own virtual media (to `active`) instead of "
        "the server.provision steps",
    )


class Registration(BaseModel):
    identity: str
    target: str
    object_id: str
    state: str
    created: bool


class RegisterResult(BaseModel):
    registered: list[Registration] = Field(default_factory=list)
    failed: list[ProvisionFailure] = Field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Step types
# --------------------------------------------------------------------------------------------------

REGISTRY.register(
    StepType(
        name="server.discover",
        kind=StepKind.WORKFLOW,
        target="ServerDiscoveryWorkflow",
        task_queue=queues.REDFISH,
        args_model=DiscoverInput,
        outputs_model=DiscoverResult,
        description="Discover a site's BMCs and read a full inventory of every system (fan-out, bounded)",
        default_timeout=timedelta(hours=2),
        non_retryable_errors=NON_RETRYABLE,
    )
)
REGISTRY.register(
    StepType(
        name="server.provision",
        kind=StepKind.WORKFLOW,
        target="ServerProvisionFleetWorkflow",
        task_queue=queues.REDFISH,
        args_model=ProvisionFleetInput,
        outputs_model=ProvisionFleetResult,
        description="Provision and image servers (BIOS, firmware, Garden Linux via virtual media), one "
        "child workflow per server with id server-provision-<identity>",
        default_timeout=timedelta(hours=6),
        non_retryable_errors=NON_RETRYABLE,
    )
)
REGISTRY.register(
    StepType(
        name="server.provision_one",
        kind=StepKind.WORKFLOW,
        target="ServerProvisionWorkflow",
        task_queue=queues.REDFISH,
        args_model=ProvisionInput,
        outputs_model=ProvisionResult,
        description="Provision and image one server",
        default_timeout=timedelta(hours=3),
        non_retryable_errors=NON_RETRYABLE,
    )
)
REGISTRY.register(
    StepType(
        name="server.register",
        kind=StepKind.ACTIVITY,
        target="server.register",
        task_queue=queues.REDFISH,
        args_model=RegisterInput,
        outputs_model=RegisterResult,
        description="Register servers in IronCore (metal.ironcore.dev BMC/BMCSecret/Server) or Ironic",
        start_to_close=timedelta(minutes=30),
        heartbeat_timeout=timedelta(minutes=2),
        default_timeout=timedelta(hours=1),
        non_retryable_errors=NON_RETRYABLE,
    )
)
