"""A landscape-wide change freeze: models shared by the freeze workflow, the check and the CLI.

Why a long-running workflow (``FreezeWorkflow``, well-known id ``apeiro-freeze`` on queue
``pipeline``) and not a record somewhere: the state lives where the work it stops lives (no second
store to lose or to reach), the workflow's history is the audit trail (every start, end and
exemption is an update or signal with who and why, and the state carries the audit list across
continue-as-new), ``--until`` is a durable timer that lifts the freeze by itself, updates validate
before anything is recorded (a freeze without a reason, an exemption without an approver are
refused), and the webhook gateway can start a freeze with signal-with-start, which is idempotent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

FREEZE_WORKFLOW_ID = "apeiro-freeze"
FREEZE_WORKFLOW = "FreezeWorkflow"
#: How often a held workflow looks again, unless the freeze says otherwise.
DEFAULT_RECHECK_SECONDS = 30.0
AUDIT_KEEP = 200
#: Memo key under which the freeze workflow publishes the active freeze (None when not frozen).
MEMO_KEY = "freeze"
#: A workflow held by a freeze continues as new once its history has this many events (the server
#: suggests it at about 4k; the hard limit is 51,200); below the minimum a recheck or two would already
#: cross it. docs/architecture.md, "Bounded histories".
HOLD_BOUND_DEFAULT, HOLD_BOUND_MIN, HOLD_BOUND_MAX = 2000, 50, 40000


def hold_bound(alias: str | None = None) -> Any:
    """The ``continue_as_new_after`` field of every input whose workflow a freeze can hold."""
    return Field(
        default=HOLD_BOUND_DEFAULT,
        ge=HOLD_BOUND_MIN,
        le=HOLD_BOUND_MAX,
        alias=alias,
        description="held by a freeze: continue as new at the freeze point once the history has this many events",
    )


class FreezeCarry(BaseModel):
    """What a cluster workflow held at a freeze point hands the next run of its chain (set by the run
    itself when it continues as new; None when a person starts it)."""

    continued: int = Field(ge=1, description="how many times the chain has continued as new")
    #: Which freeze point the next run holds at: the upgrade step's index, or the rotation half (0 start, 1 complete).
    resume_at: int = Field(default=0, ge=0)
    #: The run's result so far (the workflow's own result model, dumped): plan and applied steps, ...
    done: dict[str, Any] = Field(default_factory=dict)
    #: Maintain: candidates already past their maintenance-window check (they do not wait for it again).
    cleared: list[str] = Field(default_factory=list)


def _text(v: str) -> str:
    if not v or not v.strip():
        raise ValueError("must not be empty")
    return v.strip()


class FreezeRequest(BaseModel):
    """Start a freeze: who, why, until when (None: until someone ends it)."""

    reason: str
    by: str = Field(description="who freezes: a person, or e.g. 'alertmanager:NodeDown'")
    until: datetime | None = None
    recheck_seconds: float = Field(default=DEFAULT_RECHECK_SECONDS, gt=0, le=3600)

    _t = field_validator("reason", "by")(classmethod(lambda cls, v: _text(v)))


class FreezeEnd(BaseModel):
    by: str
    reason: str = "ended"

    _t = field_validator("by")(classmethod(lambda cls, v: _text(v)))


class Exemption(BaseModel):
    """Lets one subject act during the freeze: a workflow id, or a prefix ending in ``*``."""

    subject: str
    approver: str
    reason: str
    at: datetime | None = None

    _t = field_validator("subject", "approver", "reason")(classmethod(lambda cls, v: _text(v)))

    def covers(self, subject: str) -> bool:
        if self.subject.endswith("*"):
            return subject.startswith(self.subject[:-1])
        return subject == self.subject


class AuditEntry(BaseModel):
    at: datetime
    action: str  # started, ended, expired, exempted, requested-again
    by: str
    reason: str = ""
    subject: str = ""


class ActiveFreeze(BaseModel):
    by: str
    since: datetime
    reason: str
    until: datetime | None = None
    recheck_seconds: float = DEFAULT_RECHECK_SECONDS
    exemptions: list[Exemption] = Field(default_factory=list)

    def message(self) -> str:
        text = f"frozen by {self.by} since {self.since.isoformat(timespec='seconds')}: {self.reason}"
        if self.until is not None:
            text += f" (until {self.until.isoformat(timespec='seconds')})"
        return text


class FreezeState(BaseModel):
    """What the freeze workflow carries through continue-as-new (and what a start from the UI gives):
    unknown fields are refused, so junk typed into the UI fails the run instead of freezing nothing."""

    model_config = ConfigDict(extra="forbid")

    active: ActiveFreeze | None = None
    audit: list[AuditEntry] = Field(default_factory=list)


class FreezeCheck(BaseModel):
    """Asked by a workflow before it acts: ``subject`` is usually its own workflow id."""

    subject: str
    what: str = ""


class FreezeVerdict(BaseModel):
    frozen: bool = False
    exempt: bool = False
    message: str = ""
    recheck_seconds: float = DEFAULT_RECHECK_SECONDS
    exemption: Exemption | None = None

    @property
    def hold(self) -> bool:
        return self.frozen and not self.exempt
