"""Our orderable API on the Platform Mesh: `orchestrator.apeiro.dev/v1alpha1`.

A consumer orders work by creating an object in its kcp workspace (through an APIBinding to our
APIExport) and watches its `status`:

- `PipelineRun` (namespaced): run a catalogue pipeline by name with inputs; approvals are written
  into `spec.approvals[]`.
- One kind per lifecycle a consumer orders directly (`ClusterUpgrade`, `ServerProvision`,
  `ComponentTransport`, `ReleasePromotion`): the spec is the step type's own argument model, so the
  schema consumers see is generated from the model that validates the workflow input.
- `Pipeline` (cluster-scoped, read-only for consumers): the catalogue the provider publishes.

Every order shares one status shape (`OrderStatus`), so one controller can serve every kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "orchestrator.apeiro.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
#: The APIExport's name (Platform Mesh links ProviderMetadata and ContentConfiguration through it).
EXPORT_NAME = GROUP
#: Added to every order before a workflow is started; removed once the run has ended.
FINALIZER = f"{GROUP}/run"


class _Api(BaseModel):
    model_config = ConfigDict(populate_by_name=True, alias_generator=to_camel, extra="forbid")


class Approval(_Api):
    """A decision on an approval step; the controller sends each new entry once to the run."""

    step: str = Field(min_length=1, description="the approval step's name in the pipeline")
    approver: str = Field(min_length=1, description="who decides (checked by the step's policy)")
    approve: bool = Field(default=True, description="false rejects")
    comment: str = Field(default="", max_length=1024)


class PipelineRunSpec(_Api):
    pipeline: str = Field(min_length=1, max_length=63, description="a pipeline of the provider's catalogue")
    inputs: dict[str, Any] = Field(default_factory=dict, description="the pipeline's inputs by name")
    approvals: list[Approval] = Field(default_factory=list, max_length=64)


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    AWAITING_APPROVAL = "AwaitingApproval"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    INVALID = "Invalid"


class Condition(_Api):
    """metav1.Condition."""

    type: str = Field(min_length=1, max_length=316)
    status: str = Field(pattern=r"^(True|False|Unknown)$")
    reason: str = Field(min_length=1, max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: datetime
    observed_generation: int | None = Field(default=None, ge=0)


class StepStatus(_Api):
    name: str
    uses: str = ""
    state: str = Field(description="pending, running, waiting, succeeded, failed, skipped or cancelled")
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


class OrderStatus(_Api):
    """What the controller writes back: phase, conditions, steps and the Temporal run it follows."""

    phase: Phase = Phase.PENDING
    observed_generation: int | None = Field(default=None, ge=0)
    workflow_id: str | None = Field(default=None, description="the Temporal workflow id of this order")
    run_id: str | None = Field(default=None, description="the current run (changes on continue-as-new)")
    spec_hash: str | None = Field(default=None, description="the spec the run started from (approvals excluded)")
    conditions: list[Condition] = Field(default_factory=list)
    steps: list[StepStatus] = Field(default_factory=list)
    #: How many spec.approvals entries were already sent to the run.
    approvals_sent: int = Field(default=0, ge=0)
    message: str = ""


class PipelineCatalogSpec(_Api):
    """A catalogue entry: what a consumer needs to order the pipeline, not its steps."""

    description: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict, description="input name -> {type, default, description}")
    steps: list[str] = Field(default_factory=list, description="step names in declaration order")


@dataclass(frozen=True)
class Kind:
    """One kind of our API and how an order of it becomes a pipeline run."""

    kind: str
    plural: str
    spec_model: type[BaseModel]
    scope: str = "Namespaced"
    #: The step type a lifecycle kind runs as a one-step pipeline (None: PipelineRun or Pipeline).
    step_type: str | None = None
    description: str = ""
    orderable: bool = True
    short_names: tuple[str, ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def resource(self) -> str:
        return f"{self.plural}.{GROUP}"


def _lifecycle_spec(step_type: str) -> type[BaseModel]:
    """The argument model of a registered step type (loaded lazily: the catalogue imports a lot)."""
    from definitions.catalog import load_catalog

    return load_catalog().get(step_type).args_model


def kinds() -> list[Kind]:
    """Every kind we export, in a stable order (manifests and tests depend on it)."""
    lifecycles = (
        ("ClusterUpgrade", "clusterupgrades", "cluster.upgrade", "Upgrade a Gardener shoot minor by minor."),
        ("ServerProvision", "serverprovisions", "server.provision", "Provision a site's bare-metal servers."),
        ("ComponentTransport", "componenttransports", "component.transport", "Copy and sign OCM components."),
        ("ReleasePromotion", "releasepromotions", "promotion.run", "Promote a release ring by ring."),
    )
    return [
        Kind(
            "PipelineRun",
            "pipelineruns",
            PipelineRunSpec,
            description="Run a catalogue pipeline with inputs.",
            short_names=("pr",),
        ),
        *(
            Kind(kind, plural, _lifecycle_spec(step), step_type=step, description=text)
            for kind, plural, step, text in lifecycles
        ),
        Kind(
            "Pipeline",
            "pipelines",
            PipelineCatalogSpec,
            scope="Cluster",
            description="The provider's pipeline catalogue (read-only for consumers).",
            orderable=False,
        ),
    ]


def kind_named(name: str) -> Kind:
    for k in kinds():
        if name in (k.kind, k.plural):
            return k
    raise KeyError(f"{name!r} is not a kind of {API_VERSION}; known: {', '.join(k.kind for k in kinds())}")
