"""What the server workflows and activities exchange: discovery, provisioning and registration
inputs and results (workflow and activity messages, not operator declarations)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from definitions.server.inventory import ServerSummary
from definitions.server.site import (
    BmcConnection,
    FirmwareUpdate,
    ImageSpec,
    ProvisionSpec,
    SiteDefinition,
    _Strict,
    normalise_url,
)

# --------------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------------


__all__ = [
    "BiosApply",
    "BmcProblem",
    "BootRequest",
    "DiscoverBmcInput",
    "DiscoverBmcsInput",
    "DiscoverBmcsResult",
    "DiscoverInput",
    "DiscoverResult",
    "DiscoveryDiff",
    "DiscoveryProgress",
    "FirmwareStart",
    "FirmwareStarted",
    "ImageCheck",
    "ImageChecked",
    "InlineInventory",
    "InventoryBatchInput",
    "InventoryBatchResult",
    "InventoryReadInput",
    "ListBatchInput",
    "ListBatchResult",
    "ListSystemsResult",
    "MediaRequest",
    "OsReport",
    "PowerRequest",
    "PowerWait",
    "PowerWaitResult",
    "ProvisionFailure",
    "ProvisionFleetInput",
    "ProvisionFleetResult",
    "ProvisionInput",
    "ProvisionResult",
    "RegisterInput",
    "RegisterResult",
    "Registration",
    "ServerChange",
    "ServerRef",
    "SiteSnapshot",
    "StepOutcome",
    "SystemTarget",
    "TaskWait",
    "claim_workflow_id",
    "provision_workflow_id",
]


class DiscoverInput(_Strict):
    site: SiteDefinition
    concurrency: int = Field(default=16, ge=1, le=500, description="inventory reads in flight at most")
    systems_per_batch: int = Field(default=100, ge=1, le=500, description="systems per child workflow")
    bmcs_per_batch: int = Field(default=50, ge=1, le=500, description="BMCs listed per child workflow")
    systems_inline: int = Field(
        default=4,
        ge=0,
        le=64,
        description="a BMC with at most this many systems has their inventories read by the activity that "
        "lists them (one activity per BMC, the session reused); larger ones (chassis) fan out in inventory batches",
    )
    store_inventory: bool = Field(default=True, description="write full inventories to the inventory store")
    compare_with_previous: bool = True
    bmcs_per_activity: int = Field(
        default=8,
        ge=1,
        le=64,
        description="BMCs one redfish.discover_bmcs activity reads one after the other (fewer activities, "
        "workflow tasks and history events per BMC); a BMC whose read fails in a way a retry may fix is read "
        "again in an activity of its own, with the usual retries; scanned range addresses always get their own",
    )


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


class DiscoveryProgress(BaseModel):
    """What `ServerDiscoveryWorkflow`'s `status` query answers (and `apeiro baremetal discover` shows).

    A BMC is done when it was listed with a problem or no systems, or when every system behind it has
    been inventoried (or failed). Counts move as each child batch ends, not per request."""

    state: str = "starting"  # starting, validating, listing, inventorying, comparing, done
    bmcs_total: int = 0
    bmcs_done: int = 0
    systems_total: int = 0
    systems_done: int = 0
    problems: int = Field(default=0, description="problems so far (unreachable BMC, failed read, ...)")
    servers: int = Field(default=0, description="servers found (set when done)")


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
    #: Set by ``redfish.discover_bmc`` when it read every listed system's inventory itself: the summaries,
    #: and a problem per system whose read failed in a way no retry fixes.
    inventoried: bool = False
    servers: list[ServerSummary] = Field(default_factory=list)
    problems: list[BmcProblem] = Field(default_factory=list)


class InlineInventory(BaseModel):
    """Read the inventories of a BMC's systems in the activity that lists them (at most ``max_systems``)."""

    site: str
    store: bool = True
    max_systems: int = 4


class DiscoverBmcInput(BaseModel):
    """One BMC to log in to, list and (up to ``inline.max_systems`` systems) inventory, in one activity."""

    model_config = ConfigDict(hide_input_in_errors=True)
    conn: BmcConnection
    inline: InlineInventory


class DiscoverBmcsInput(BaseModel):
    """Several BMCs for one activity to read one after the other, each as ``redfish.discover_bmc`` would."""

    model_config = ConfigDict(hide_input_in_errors=True)
    conns: list[BmcConnection]
    inline: InlineInventory


class DiscoverBmcsResult(BaseModel):
    #: One per BMC read (its systems, or its problem when no retry can fix it), in input order; the BMCs
    #: named in ``again`` have none.
    results: list[ListSystemsResult] = Field(default_factory=list)
    #: Indexes (into ``conns``) of the BMCs whose read failed in a way a retry may fix: the workflow reads
    #: each again in a ``redfish.discover_bmc`` of its own, with the usual retry policy.
    again: list[int] = Field(default_factory=list)


class ListBatchInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    bmcs: list[BmcConnection]
    concurrency: int = 16
    #: Given: one ``redfish.discover_bmc`` per BMC (list and inventory); absent: ``redfish.list_systems``
    #: (the parent starts it only on its patched path, so histories from before replay unchanged).
    inline: InlineInventory | None = None
    #: With ``inline``: above 1, BMCs (not scanned addresses) go ``bmcs_per_activity`` at a time to one
    #: ``redfish.discover_bmcs``. Set by the parent's patched path only (1 replays the older children).
    bmcs_per_activity: int = 1


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
    backend: Literal["redfish", "ironcore"] = "redfish"
    #: backend ironcore: metal-operator's Server and the ServerClaim that holds it.
    server_name: str | None = None
    claim: str | None = None


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

    @classmethod
    def unknown_bmc(cls, server: ServerSummary, site: str) -> ProvisionFailure:
        """A server whose BMC the site does not list."""
        message = f"{server.bmc_url} is not a BMC of site {site}"
        return cls(identity=server.identity, error_type="UnknownBmc", message=message)


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


def claim_workflow_id(identity: str) -> str:
    """Workflow id of a server's claim through metal-operator (backend ironcore)."""
    return f"server-claim-{identity}"


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
    discovery_timeout_s: float | None = Field(
        default=None, gt=0, description="IronCore: wait this long for the Server (None: the worker's default)"
    )
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
