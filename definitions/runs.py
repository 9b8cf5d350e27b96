"""Models of a pipeline run: the workflow's input, its live status, its result, and its updates.

These are what people type into the Temporal UI (``PipelineRequest``) and what `apeiro status` shows.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from definitions.pinning import PinnedDefinition


class StepState(StrEnum):
    PENDING = "pending"        # waiting for its needs
    RUNNING = "running"        # an activity or child workflow is executing
    WAITING = "waiting"        # a timer or an approval
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"        # its `when` was false
    CANCELLED = "cancelled"    # a dependency failed, or the pipeline was cancelled

    @property
    def terminal(self) -> bool:
        return self in (StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED, StepState.CANCELLED)


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ApprovalVote(BaseModel):
    approver: str
    approve: bool
    comment: str = ""
    at: datetime


class RepairRequest(BaseModel):
    """An operator's repair of a running pipeline (retry, skip, pause, resume), sent as an update.

    Who acts and why are required so every repair is audited in the run's records."""

    step: str | None = None
    by: str = Field(min_length=1)
    reason: str = ""
    #: skip: the outputs the skipped step is taken to have produced (dependants read them).
    outputs: Any = None


class RepairRecord(BaseModel):
    """The audit of one repair: what, who, when, why."""

    action: str
    by: str
    reason: str = ""
    at: datetime


class StepRecord(BaseModel):
    """Everything the engine knows about one step; carried across continue-as-new."""

    name: str
    uses: str
    state: StepState = StepState.PENDING
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outputs: Any = None
    error: str | None = None
    ignored_failure: bool = False
    items_total: int | None = None
    items_done: int = 0
    items_failed: int = 0
    child_workflow_ids: list[str] = Field(default_factory=list)
    #: Builtins that survive continue-as-new keep their progress here.
    wait_until: datetime | None = None
    votes: list[ApprovalVote] = Field(default_factory=list)
    repairs: list[RepairRecord] = Field(default_factory=list)


class Continuation(BaseModel):
    """State handed to the next run when a long pipeline continues as new."""

    definition: dict[str, Any]
    inputs: dict[str, Any]
    records: list[StepRecord]
    generation: int = 1
    #: The resolution pinned when the first run started (definitions/pinning.py).
    pinned: PinnedDefinition | None = None


class Reuse(BaseModel):
    """Steps of an earlier run whose outputs a re-run takes as they are (they do not run again)."""

    from_run: str = Field(alias="fromRun", min_length=1)
    steps: dict[str, Any] = Field(default_factory=dict, description="step name -> its outputs in that run")
    #: The audit of the re-run (in the new run's first history event): from which step, who, why.
    from_step: str | None = Field(default=None, alias="fromStep")
    by: str | None = None
    reason: str = ""

    model_config = ConfigDict(populate_by_name=True)


class PipelineRequest(BaseModel):
    """Input of ``PipelineWorkflow``. Give ``pipeline`` (a name the workers know) or ``definition``.

    Example for the Temporal UI: ``{"pipeline": "edge-site", "inputs": {"site": "edge-1"}}``.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    pipeline: str | None = None
    definition: dict[str, Any] | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    #: A re-run (`apeiro rerun`): steps taken as done with the outputs of an earlier run.
    reuse: Reuse | None = None
    requested_by: str | None = Field(default=None, alias="requestedBy")
    #: Continue as new once history exceeds this many events (the server suggests it at ~4k too).
    continue_as_new_after: int = Field(default=8000, ge=100, le=40000, alias="continueAsNewAfter")
    continuation: Continuation | None = None
    #: A parent pipeline's pinned resolution, which a sub-pipeline runs with (definitions/pinning.py).
    pinned: PinnedDefinition | None = None
    #: How deep this run sits in core.pipeline sub-pipelines (0: started by a person or a trigger).
    depth: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> PipelineRequest:
        if self.continuation is None and (self.pipeline is None) == (self.definition is None):
            raise ValueError("give exactly one of 'pipeline' (a name known to the workers) or 'definition'")
        return self


class StepStatus(BaseModel):
    name: str
    uses: str
    state: StepState
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    items_total: int | None = None
    items_done: int = 0
    items_failed: int = 0
    child_workflow_ids: list[str] = Field(default_factory=list)
    votes: list[ApprovalVote] = Field(default_factory=list)
    repairs: list[RepairRecord] = Field(default_factory=list)


class PipelineStatus(BaseModel):
    pipeline: str
    workflow_id: str
    state: RunState
    generation: int = 1
    steps: list[StepStatus]
    error: str | None = None
    #: Scheduling of new steps is paused by an operator (steps in flight go on).
    paused: bool = False
    #: Run-level repairs (pause, resume) with who, when and why.
    repairs: list[RepairRecord] = Field(default_factory=list)
    #: Content hash of the pinned definition and step types this run uses (None: started unpinned).
    revision: str | None = None


class PipelineResult(BaseModel):
    pipeline: str
    state: RunState
    outputs: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepStatus] = Field(default_factory=list)
    generation: int = 1


class ApprovalDecision(BaseModel):
    """Argument of the ``approve`` update."""

    model_config = ConfigDict(populate_by_name=True)

    step: str
    approver: str = Field(min_length=1)
    approve: bool = True
    comment: str = ""


class ApprovalState(BaseModel):
    step: str
    approvals: int
    needed: int
    decided: bool
    approved: bool | None = None

    def summary(self, name: str) -> str:
        """`gate: approved (1/1 approvals)`, as the CLI prints it."""
        verdict = "approved" if self.approved else ("rejected" if self.decided else "recorded")
        return f"{name}: {verdict} ({self.approvals}/{self.needed} approvals)"
