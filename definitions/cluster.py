"""What users declare for the cluster lifecycle, and its step types.

Models are shared by workflows and activities (pydantic, sandbox-safe). The garden is reached through
a kubeconfig given as a secret reference (``env:NAME``, ``file:/path``, ``k8s:ns/secret#key``),
never inline: workflow histories are readable.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from definitions import queues
from definitions.cluster_plan import PlanStep, Readiness, UpgradePlan, parse_version
from definitions.freeze import FreezeCarry, hold_bound
from definitions.secrets import SecretRef
from definitions.steptypes import StepTable, register_all

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check_version(value: str | None) -> str | None:
    if value is not None:
        parse_version(value)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid")


class GardenRef(_Strict):
    kubeconfig_ref: SecretRef | None = Field(
        default=None,
        description="secret reference to the garden kubeconfig (env:/file:/k8s:); default: the file named "
        "by $APEIRO_GARDEN_KUBECONFIG",
    )


class WorkerPool(_Strict):
    name: str = Field(min_length=1, max_length=15)
    machine_type: str
    image_name: str = "gardenlinux"
    image_version: str | None = None
    minimum: int = Field(default=1, ge=0)
    maximum: int = Field(default=2, ge=1)
    zones: list[str] = Field(default_factory=list)
    kubernetes_version: str | None = None

    _v = field_validator("kubernetes_version")(classmethod(lambda cls, v: _check_version(v)))


class MaintenanceWindow(_Strict):
    begin: str = Field(default="220000+0000", pattern=r"^\d{6}[+-]\d{4}$")
    end: str = Field(default="230000+0000", pattern=r"^\d{6}[+-]\d{4}$")


class ClusterSpec(_Strict):
    """A cluster definition; becomes a Shoot in the project namespace."""

    name: str = Field(max_length=21)
    project_namespace: str = "garden-edge"
    cloud_profile: str
    region: str
    credentials_binding: str
    provider_type: str
    kubernetes_version: str
    workers: list[WorkerPool] = Field(min_length=1)
    maintenance: MaintenanceWindow = Field(default_factory=MaintenanceWindow)
    networking_type: str = "calico"
    nodes_cidr: str | None = None
    confine_spec_update_rollout: bool = Field(
        default=False, description="Gardener rolls spec changes out only inside the maintenance window"
    )
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("name", "project_namespace")
    @classmethod
    def _dns(cls, v: str) -> str:
        if not _DNS_LABEL.match(v):
            raise ValueError(f"{v!r} must be a DNS label (lowercase letters, digits, '-')")
        return v

    _v = field_validator("kubernetes_version")(classmethod(lambda cls, v: _check_version(v)))


#: Failed codes after which the create/upgrade workflows hand the Shoot back to Gardener with `retry`.
AutoRetryCodes = Annotated[
    list[str], Field(description="Failed codes after which the workflow annotates `gardener.cloud/operation: retry`")
]


def _rate_limits() -> list[str]:
    return ["ERR_INFRA_RATE_LIMITS_EXCEEDED"]


class ClusterCreateInput(_Strict):
    cluster: ClusterSpec
    garden: GardenRef = Field(default_factory=GardenRef)
    timeout_seconds: float = Field(default=3600, gt=0, description="overall limit for the shoot to become ready")
    auto_retry_codes: AutoRetryCodes = Field(default_factory=_rate_limits)
    max_auto_retries: int = Field(default=3, ge=0)
    auto_retry_delay_seconds: float = Field(default=60, ge=0)
    site: str | None = None


class ShootRef(BaseModel):
    name: str
    namespace: str
    kubernetes_version: str = ""
    generation: int = 0
    resource_version: str = ""
    created: bool = False
    note: str = ""


class ClusterCreateResult(BaseModel):
    name: str
    namespace: str
    kubernetes_version: str
    created: bool
    technical_id: str = ""
    ready_resource_version: str = ""
    ready_observed_at: float = Field(default=0.0, description="epoch seconds when the activity saw ready")


class ClusterUpgradeInput(_Strict):
    name: str
    project_namespace: str = "garden-edge"
    target_version: str | None = Field(default=None, description="control plane target; None keeps it")
    machine_image_version: str | None = Field(
        default=None, description="worker image version, 'latest' for the newest usable, None keeps them"
    )
    upgrade_workers: bool = Field(default=True, description="move pools that pin an older Kubernetes version")
    confined_rollout: Literal["reconcile", "wait"] = Field(
        default="reconcile",
        description="for shoots with confineSpecUpdateRollout outside their window: 'reconcile' annotates "
        "gardener.cloud/operation=reconcile with each patch (roll out now); 'wait' waits for the window",
    )
    allow_preview: bool = False
    dry_run: bool = False
    garden: GardenRef = Field(default_factory=GardenRef)
    step_timeout_seconds: float = Field(default=3600, gt=0)
    auto_retry_codes: AutoRetryCodes = Field(default_factory=_rate_limits)
    max_auto_retries: int = Field(default=3, ge=0)
    auto_retry_delay_seconds: float = Field(default=60, ge=0)
    site: str | None = None
    #: Bounded histories: held at a freeze point past this many events, the run continues as new.
    continue_as_new_after: int = hold_bound()
    #: Set by the run itself when it continues as new (not part of the schema users see).
    carried: SkipJsonSchema[FreezeCarry | None] = None

    _v = field_validator("target_version")(classmethod(lambda cls, v: _check_version(v)))


class ClusterUpgradeResult(BaseModel):
    name: str
    namespace: str
    plan: UpgradePlan
    applied: list[PlanStep] = Field(default_factory=list)
    dry_run: bool = False
    kubernetes_version: str = ""


class ClusterDeleteInput(_Strict):
    name: str
    project_namespace: str = "garden-edge"
    garden: GardenRef = Field(default_factory=GardenRef)
    timeout_seconds: float = Field(default=3600, gt=0)
    site: str | None = None


class ClusterDeleteResult(BaseModel):
    name: str
    namespace: str
    existed: bool


class ClusterMaintainInput(_Strict):
    project_namespace: str = "garden-edge"
    names: list[str] | None = Field(default=None, description="shoots to consider; None: every shoot")
    expiring_within_days: float = Field(default=30, ge=0)
    wait_for_window: bool = Field(default=False, description="wait for each shoot's window instead of skipping")
    ignore_windows: bool = Field(default=False, description="operator override: upgrade now")
    allow_preview: bool = False
    dry_run: bool = False
    garden: GardenRef = Field(default_factory=GardenRef)
    step_timeout_seconds: float = Field(default=3600, gt=0)
    #: Bounded histories: held at a freeze point past this many events, the run continues as new.
    continue_as_new_after: int = hold_bound()
    #: Set by the run itself when it continues as new (not part of the schema users see).
    carried: SkipJsonSchema[FreezeCarry | None] = None


class MaintenanceCandidate(BaseModel):
    name: str
    namespace: str
    kubernetes_version: str
    target_version: str | None = None
    machine_image_version: str | None = None
    reasons: list[str] = Field(default_factory=list)
    window_begin: str = "220000+0000"
    window_end: str = "230000+0000"


class ClusterMaintainResult(BaseModel):
    upgraded: list[str] = Field(default_factory=list)
    planned: dict[str, list[str]] = Field(
        default_factory=dict, description="dry run: the upgrade steps each shoot would get"
    )
    skipped: dict[str, str] = Field(default_factory=dict)
    failed: dict[str, str] = Field(default_factory=dict)
    candidates: list[MaintenanceCandidate] = Field(default_factory=list)


class ClusterStatus(BaseModel):
    """Answer of the `status` query every cluster workflow serves."""

    phase: str = "starting"
    message: str = ""
    plan: UpgradePlan | None = None
    applied: list[PlanStep] = Field(default_factory=list)
    readiness: Readiness | None = None


# --- activity arguments ----------------------------------------------------------------------------


class ApplyShootInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    cluster: ClusterSpec
    garden: GardenRef = Field(default_factory=GardenRef)


class ShootKey(BaseModel):
    """Which shoot, in which garden: the argument of an activity that needs no more."""

    model_config = ConfigDict(hide_input_in_errors=True)
    name: str
    namespace: str
    garden: GardenRef = Field(default_factory=GardenRef)


class WaitShootInput(ShootKey):
    deadline_epoch: float = Field(description="absolute end (epoch s), fixed by the workflow across retries")
    min_generation: int = 0
    expect_gone: bool = False
    watch_seconds: int = Field(default=20, description="one watch session; the activity heartbeats between")


class PlanInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    name: str
    namespace: str
    target_version: str | None = None
    machine_image_version: str | None = None
    upgrade_workers: bool = True
    allow_preview: bool = False
    garden: GardenRef = Field(default_factory=GardenRef)


class PatchShootInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    name: str
    namespace: str
    step: PlanStep
    force_reconcile: bool = False
    garden: GardenRef = Field(default_factory=GardenRef)


class DeleteShootInput(ShootKey):
    pass


class CandidatesInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    namespace: str
    names: list[str] | None = None
    expiring_within_days: float = 30
    allow_preview: bool = False
    garden: GardenRef = Field(default_factory=GardenRef)


class CandidatesResult(BaseModel):
    candidates: list[MaintenanceCandidate] = Field(default_factory=list)


#: Errors a retry cannot fix; the step fails at once.
NON_RETRYABLE = (
    "ShootRejected",
    "ShootFailed",
    "ShootTimeout",
    "ShootNotFound",
    "UpgradeNotPossible",
    "GardenConfigError",
)

CLUSTER = StepTable(task_queue=queues.GARDENER, non_retryable_errors=NON_RETRYABLE, site_arg="site")

# One row a step type: the table reads as a table.
# fmt: off
STEP_TYPES = register_all([
    CLUSTER.workflow("cluster.create", "ClusterCreateWorkflow", ClusterCreateInput, ClusterCreateResult,
                     "Create (or adopt) a Gardener Shoot and wait until it is ready",
                     default_timeout=timedelta(hours=2)),
    CLUSTER.workflow("cluster.upgrade", "ClusterUpgradeWorkflow", ClusterUpgradeInput, ClusterUpgradeResult,
                     "Upgrade a Shoot minor by minor (control plane, then workers and images)",
                     default_timeout=timedelta(hours=6)),
    CLUSTER.workflow("cluster.delete", "ClusterDeleteWorkflow", ClusterDeleteInput, ClusterDeleteResult,
                     "Confirm, delete and wait until the Shoot is gone", default_timeout=timedelta(hours=2)),
    CLUSTER.workflow("cluster.maintain", "ClusterMaintainWorkflow", ClusterMaintainInput, ClusterMaintainResult,
                     "Upgrade shoots whose versions are deprecated or expire soon, inside maintenance windows",
                     default_timeout=timedelta(hours=24), site_arg=None),
])
# fmt: on
