"""Run-time models of promotions: requests, signals and updates, status, and the audit record.

Shared by the promotion workflows, their activities, the CLI and tests (data only, sandbox-safe).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from definitions.promotion import Calendar, Flags, GateOutcome, PromotionPipeline, Target


class _Open(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class PromotionRequest(_Open):
    promotion: PromotionPipeline
    version: str = Field(min_length=1)
    requested_by: str | None = None
    override_reason: str | None = None
    #: Continue as new at the next gate check once the history has this many events (or the server
    #: suggests it, at about 4k events); docs/promotion.md, "Long promotions".
    continue_as_new_after: int = Field(default=2000, ge=50, le=40000)
    #: Set by the run itself when it continues as new: where it stood (None when a person starts it).
    carried: PromotionCarry | None = None


class RunState(StrEnum):
    VALIDATING = "Validating"
    QUEUED = "Queued"          # waiting for the coordinator or a ring held by another run
    RUNNING = "Running"
    PAUSED = "Paused"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"          # a gate failed; the ring was rolled back
    ROLLED_BACK = "RolledBack"  # rolled back on request
    SUPERSEDED = "Superseded"
    ABORTED = "Aborted"
    BLOCKED = "Blocked"        # the version failed before and no override was given
    REJECTED = "Rejected"
    REFUSED = "Refused"        # a release in flight pins another version of one of its components


FINAL_STATES = {RunState.SUCCEEDED, RunState.FAILED, RunState.ROLLED_BACK, RunState.SUPERSEDED,
                RunState.ABORTED, RunState.BLOCKED, RunState.REJECTED, RunState.REFUSED}


class RingState(StrEnum):
    PENDING = "Pending"
    WAITING_LOCK = "WaitingForRing"
    ENTRY_GATES = "EntryGates"
    DEPLOYING = "Deploying"
    VERIFYING = "Verifying"
    VERIFIED = "Verified"
    FAILED = "Failed"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    STOPPED = "Stopped"


# --- coordinator protocol ---------------------------------------------------------------------------


class RegisterRequest(_Open):
    pipeline: str
    version: str
    workflow_id: str
    override_reason: str | None = None
    requested_by: str | None = None
    supersede: bool = True
    block_failed: bool = True
    #: Component -> version the run puts on its Stages (a release: several; empty from older runs).
    pins: dict[str, str] = Field(default_factory=dict)
    release: bool = False
    #: The component every Stage is pointed at (the artifact, or the release's vector).
    component: str = ""


class RegisterReply(_Open):
    sequence: int
    blocked: bool = False
    reason: str = ""
    #: Refused: a release in flight pins another version of a component this run pins (``reason`` names it).
    conflict: bool = False


class RingLockRequest(_Open):
    ring: str
    workflow_id: str
    sequence: int


class RingGrant(_Open):
    ring: str
    last_verified: str | None = None
    #: The components the last verified version pinned (what a rollback puts back).
    last_verified_pins: dict[str, str] | None = None
    #: The component the Stages ran at that version (a release's vector, or one artifact).
    last_verified_component: str | None = None


class RingReport(_Open):
    ring: str
    version: str
    workflow_id: str
    reason: str = ""


class RunFinished(_Open):
    workflow_id: str
    version: str
    state: RunState


class Superseded(_Open):
    by_version: str
    by_sequence: int


class CoordinatorRun(_Open):
    version: str
    sequence: int
    workflow_id: str
    state: str = "Running"
    override_reason: str | None = None
    pins: dict[str, str] = Field(default_factory=dict)
    release: bool = False
    component: str = ""


class CoordinatorState(_Open):
    pipeline: str
    next_sequence: int = 1
    runs: list[CoordinatorRun] = Field(default_factory=list)
    blocked: dict[str, str] = Field(default_factory=dict)
    holders: dict[str, str] = Field(default_factory=dict)
    waiting: dict[str, list[RingLockRequest]] = Field(default_factory=dict)
    last_verified: dict[str, str] = Field(default_factory=dict)
    #: Per ring, the components its last verified version pinned.
    last_verified_pins: dict[str, dict[str, str]] = Field(default_factory=dict)
    last_verified_component: dict[str, str] = Field(default_factory=dict)


# --- operator actions -----------------------------------------------------------------------------


class GateRef(_Open):
    ring: str
    gate: str


class GateOverride(_Open):
    ring: str
    gate: str
    by: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class OperatorAction(_Open):
    by: str = ""
    reason: str = ""


class TestResult(_Open):
    ring: str
    gate: str
    passed: bool
    detail: str = ""


class ExternalAlert(_Open):
    message: str = Field(min_length=1)
    ring: str | None = None
    source: str = "alertmanager"


class CalendarChange(_Open):
    name: str
    calendar: Calendar


# --- activities -----------------------------------------------------------------------------------


class StageDeploy(_Open):
    """Point a Stage at a vector: ``{component, version, repository}`` or an OCM reference string.

    The activity writes ``spec.vector`` as the reference ``<repository>//<component>:<version>``; a
    version the Stage has verified before (in ``status.vectorHistory``) is re-pointed to exactly that
    reference, which is how a rollback lands on the last verified vector.
    """

    target: Target
    vector: dict[str, Any] | str
    ready_timeout_seconds: float = 600.0
    #: With ``target.vector_promotion_config``: who approved (recorded on the VectorPromotion, which then
    #: requires approval, so Konfidence's audit shows it); None: a promotion without an approval gate.
    approved_by: str | None = None


class StageDeployResult(_Open):
    """``vector`` and ``previous_vector`` as ``{component, version, repository, reference}``."""

    stage: str
    previous_vector: dict[str, Any] | None = None
    vector: dict[str, Any]
    changed: bool = True
    message: str = ""


class PromQuery(_Open):
    address: str
    query: str


class PromResult(_Open):
    ok: bool
    value: float | None = None
    samples: int = 0
    error: str = ""


class ProbeRequest(_Open):
    url: str


class ProbeResult(_Open):
    ok: bool
    status: int = 0
    body: Any = None
    error: str = ""


class TestTrigger(_Open):
    url: str
    pipeline: str
    version: str
    ring: str
    gate: str
    workflow_id: str


class TestPoll(_Open):
    url: str


class TestPollResult(_Open):
    finished: bool
    passed: bool = False
    detail: str = ""


class NextAllowed(_Open):
    calendar: Calendar
    after: datetime


class NextAllowedResult(_Open):
    at: datetime
    reason: str = ""


class FlagApply(_Open):
    flags: Flags
    ring: str
    version: str


class FlagApplyResult(_Open):
    path: str
    before: dict[str, Any] | None = None
    changed: list[str] = Field(default_factory=list)


class FlagRestore(_Open):
    path: str
    before: dict[str, Any] | None = None


# --- status and audit -----------------------------------------------------------------------------


class Measurement(_Open):
    at: datetime
    value: float | None = None
    outcome: str
    detail: str = ""


class Vote(_Open):
    approver: str
    approve: bool
    comment: str = ""
    at: datetime


class GateStatus(_Open):
    name: str
    type: str
    phase: str  # entry | verify
    state: str = "Pending"  # Pending, Running, Waiting, Paused, Done
    outcome: GateOutcome | None = None
    reason: str = ""
    next_check: datetime | None = None
    measurements: list[Measurement] = Field(default_factory=list)
    votes: list[Vote] = Field(default_factory=list)
    needed: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TargetStatus(_Open):
    stage: str
    #: The landscape the Stage lives on (when the target names one, e.g. in landscape waves).
    landscape: str | None = None
    previous_vector: dict[str, Any] | None = None
    deployed: bool = False
    message: str = ""


class FlagChange(_Open):
    path: str
    changed: list[str]
    before: dict[str, Any] | None = None
    reverted: bool = False


class Override(_Open):
    gate: str
    by: str
    reason: str
    at: datetime


class RingAttempt(_Open):
    """One ring attempt; frozen into the audit list when it ends (never changed afterwards)."""

    ring: str
    attempt: int
    version: str
    sequence: int
    state: RingState = RingState.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str = ""
    targets: list[TargetStatus] = Field(default_factory=list)
    gates: list[GateStatus] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)
    flag_changes: list[FlagChange] = Field(default_factory=list)
    rollback_to: str | None = None
    pending: str = ""
    #: Component -> version this attempt deploys (a release: every component it pins).
    components: dict[str, str] = Field(default_factory=dict)
    #: Component -> version the rollback target pins (known when the coordinator verified it).
    rollback_components: dict[str, str] | None = None
    #: The component of the rollback target when it is not this run's (one artifact before a release).
    rollback_component: str | None = None


class PromotionStatus(_Open):
    pipeline: str
    version: str
    sequence: int = 0
    workflow_id: str = ""
    state: RunState = RunState.VALIDATING
    paused: bool = False
    message: str = ""
    requested_by: str | None = None
    override_reason: str | None = None
    rings: list[RingAttempt] = Field(default_factory=list)
    waiting_approvals: list[str] = Field(default_factory=list)


class PromotionOutcome(_Open):
    status: PromotionStatus
    audit: list[RingAttempt] = Field(default_factory=list)


# --- continue-as-new ------------------------------------------------------------------------------


class GateProgress(_Open):
    """Where one gate's check stands, so the next run of a continued promotion picks it up where it
    was: the driver's deadline, Error retries and backoff (``gating.py``) and the evaluator's own
    counters and timer (``gates/``)."""

    ring: str
    gate: str
    #: evaluating: the evaluator runs; backoff: waiting to retry an Error; paused: waiting for a person.
    stage: Literal["evaluating", "backoff", "paused"] = "evaluating"
    deadline: datetime | None = None
    retries: int = 0
    backoff: timedelta = timedelta(seconds=30)
    #: The evaluator's counters (measurements taken, failed, errors in a row, successes in a row).
    counters: dict[str, int] = Field(default_factory=dict)
    #: When the evaluator's current timer ends (a soak's end, the next measurement or probe).
    until: datetime | None = None
    #: testSuite: the suite was triggered (a continued run waits for its result, never triggers twice).
    triggered: bool = False

    def restart(self) -> None:
        """A new evaluation (first check, or after a retry): the evaluator starts from scratch."""
        self.counters, self.until, self.triggered = {}, None, False


class PromotionCarry(_Open):
    """What a promotion hands the next run of its chain when it continues as new (``ring.py``): the
    ring and phase it was in, the run's status with every gate's record (votes, measurements,
    outcomes), the audit so far, the coordinator's answers, operator input and each open gate's
    progress."""

    continued: int = Field(ge=1, description="how many times the run has continued as new")
    ring_index: int = Field(ge=0)
    phase: Literal["entry", "freeze", "verify"]
    status: PromotionStatus
    audit: list[RingAttempt] = Field(default_factory=list)
    attempts: dict[str, int] = Field(default_factory=dict)
    registered: RegisterReply
    grants: dict[str, RingGrant] = Field(default_factory=dict)
    verified_at: dict[str, datetime] = Field(default_factory=dict)
    calendars: dict[str, Calendar] = Field(default_factory=dict)
    calendar_generation: int = 0
    overrides: list[GateOverride] = Field(default_factory=list)
    retry: list[GateRef] = Field(default_factory=list)
    test_results: list[TestResult] = Field(default_factory=list)
    gates: list[GateProgress] = Field(default_factory=list)
    superseded: Superseded | None = None
    abort: OperatorAction | None = None
    rollback: OperatorAction | None = None
    alert: ExternalAlert | None = None


PromotionRequest.model_rebuild()
