"""Gardener day-2 operations as step types: credential rotation and hibernation (queue ``gardener``).

- ``cluster.rotate-credentials``: Gardener's two-phase rotation of all shoot credentials.
  ``rotate-credentials-start`` (new CAs, keys, worker roll-out) -> wait until the shoot is ready and
  every phased credential is ``Prepared`` -> (optionally a pause, so API clients can take the new CA
  bundle) -> ``rotate-credentials-complete`` -> wait until ``Completed``. ``phase: start`` or
  ``complete`` runs one half (e.g. the halves in two waves, days apart).
- ``cluster.hibernate``: hibernate or wake up now (``enabled``) and/or set Gardener's hibernation
  schedules (cron ``start``/``end`` in a ``location``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from definitions import queues
from definitions.cluster import NON_RETRYABLE, GardenRef, _Strict
from definitions.freeze import FreezeCarry, hold_bound
from definitions.steptypes import StepTable, register_all

ROTATE_START = "rotate-credentials-start"
ROTATE_COMPLETE = "rotate-credentials-complete"
#: status.credentials.rotation entries with a phase (Preparing, Prepared, Completing, Completed).
PHASED_CREDENTIALS = ("certificateAuthorities", "serviceAccountKey", "etcdEncryptionKey")
_CRON_FIELD = re.compile(r"^[0-9*,/-]+$")


class RotateCredentialsInput(_Strict):
    name: str
    project_namespace: str = "garden-edge"
    phase: Literal["both", "start", "complete"] = Field(
        default="both", description="'both' runs start, waits, then completes; or one half"
    )
    pause_seconds: float = Field(
        default=0, ge=0, description="between the halves: time for API clients to take the new CA bundle"
    )
    garden: GardenRef = Field(default_factory=GardenRef)
    step_timeout_seconds: float = Field(default=3600, gt=0, description="limit for each half")
    site: str | None = None
    #: Bounded histories: held at a freeze point past this many events, the run continues as new.
    continue_as_new_after: int = hold_bound()
    #: Set by the run itself when it continues as new (not part of the schema users see).
    carried: SkipJsonSchema[FreezeCarry | None] = None


class RotationPhases(BaseModel):
    """``status.credentials.rotation.<credential>.phase`` of the phased credentials."""

    phases: dict[str, str] = Field(default_factory=dict)
    last_initiation_time: str = ""
    last_completion_time: str = ""

    def all_in(self, phase: str) -> bool:
        return all(self.phases.get(c) == phase for c in PHASED_CREDENTIALS)

    def summary(self) -> str:
        return ", ".join(f"{c}={self.phases.get(c) or '-'}" for c in PHASED_CREDENTIALS)


class RotateCredentialsResult(BaseModel):
    name: str
    namespace: str
    started: bool = False
    completed: bool = False
    phases: RotationPhases = Field(default_factory=RotationPhases)


class HibernationSchedule(_Strict):
    """Gardener's ``spec.hibernation.schedules[]``: cron ``start`` (hibernate) and/or ``end`` (wake)."""

    start: str | None = None
    end: str | None = None
    location: str | None = Field(default=None, description="IANA time zone, e.g. Europe/Berlin (default UTC)")

    @field_validator("start", "end")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None and (len(v.split()) != 5 or not all(_CRON_FIELD.match(f) for f in v.split())):
            raise ValueError(f"{v!r} is not a five-field cron expression (minute hour day month weekday)")
        return v

    @field_validator("location")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ValueError, KeyError, OSError):
                raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _one(self) -> HibernationSchedule:
        if not self.start and not self.end:
            raise ValueError("a hibernation schedule needs start and/or end")
        return self


class HibernationInput(_Strict):
    name: str
    project_namespace: str = "garden-edge"
    enabled: bool | None = Field(default=None, description="true hibernates now, false wakes up now")
    schedules: list[HibernationSchedule] | None = Field(
        default=None, description="replace the shoot's hibernation schedules ([] removes them)"
    )
    garden: GardenRef = Field(default_factory=GardenRef)
    timeout_seconds: float = Field(default=3600, gt=0)
    site: str | None = None
    #: Bounded histories: held at a freeze point past this many events, the run continues as new.
    continue_as_new_after: int = hold_bound()
    #: Set by the run itself when it continues as new (not part of the schema users see).
    carried: SkipJsonSchema[FreezeCarry | None] = None

    @model_validator(mode="after")
    def _something(self) -> HibernationInput:
        if self.enabled is None and self.schedules is None:
            raise ValueError("give enabled (hibernate or wake up now) and/or schedules")
        return self


class HibernationResult(BaseModel):
    name: str
    namespace: str
    hibernated: bool
    changed: bool = False
    schedules: list[HibernationSchedule] = Field(default_factory=list)


# --- activity arguments ----------------------------------------------------------------------------


class OperationInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    name: str
    namespace: str
    operation: str
    garden: GardenRef = Field(default_factory=GardenRef)


class OperationResult(BaseModel):
    """What the annotate activity did: ``annotated`` False when the shoot was already past that phase."""

    annotated: bool
    generation: int
    phases: RotationPhases = Field(default_factory=RotationPhases)


class SetHibernationInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    name: str
    namespace: str
    enabled: bool | None = None
    schedules: list[HibernationSchedule] | None = None
    garden: GardenRef = Field(default_factory=GardenRef)


class HibernationState(BaseModel):
    generation: int
    enabled: bool
    hibernated: bool
    changed: bool = False
    schedules: list[HibernationSchedule] = Field(default_factory=list)


GARDENER_DAY2 = StepTable(task_queue=queues.GARDENER, non_retryable_errors=NON_RETRYABLE, site_arg="site")

# fmt: off
STEP_TYPES = register_all([
    GARDENER_DAY2.workflow("cluster.rotate-credentials", "ClusterRotateCredentialsWorkflow", RotateCredentialsInput,
                           RotateCredentialsResult,
                           "Rotate all shoot credentials in Gardener's two phases (start, wait, complete)",
                           default_timeout=timedelta(hours=4)),
    GARDENER_DAY2.workflow("cluster.hibernate", "ClusterHibernationWorkflow", HibernationInput, HibernationResult,
                           "Hibernate or wake up a shoot now, and/or set its hibernation schedules",
                           default_timeout=timedelta(hours=2)),
])
# fmt: on
