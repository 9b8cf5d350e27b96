"""Waves for fleet steps: the ``fleet.rollout`` step type runs one cluster operation over the shoots a
label selector picks, wave by wave.

```yaml
uses: fleet.rollout
with:
  operation: cluster.upgrade            # cluster.upgrade | cluster.rotate-credentials | cluster.hibernate
  with: {target_version: "1.31.4"}      # the operation's arguments; name/project_namespace per target
  rollout:
    selector: {namespace: garden-edge, matchLabels: {ring: edge}}
    waves: [1, "25%", "100%"]           # cumulative: a canary of one, then up to 25 %, then all
    maxInFlight: 10
    failureBudget: 2                    # failures tolerated in total (or "10%"); one more stops
    gates: [{type: soak, duration: 10m}, {type: approval, approvers: [bob]}]   # between waves
```

Pause, resume and abort are signals; approval of a wave gate is the ``approve_wave`` update; the
``status`` query lists every wave and every target. The freeze is checked before every target.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from definitions import queues
from definitions.cluster import NON_RETRYABLE, GardenRef
from definitions.durations import Duration
from definitions.steptypes import REGISTRY, StepKind, StepType
from definitions.waves import PERCENT, Waves, plan_waves

#: Operations a rollout may run per target (each takes ``name`` and ``project_namespace``).
OPERATIONS = ("cluster.upgrade", "cluster.rotate-credentials", "cluster.hibernate")
_PERCENT = PERCENT


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, hide_input_in_errors=True)


class Selector(_Strict):
    namespace: str = "garden-edge"
    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")
    names: list[str] | None = Field(default=None, description="only these shoots (after the labels)")

    def label_selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.match_labels.items()))


class SoakGate(_Strict):
    type: Literal["soak"] = "soak"
    duration: Duration


class ApprovalGate(_Strict):
    type: Literal["approval"] = "approval"
    approvers: list[str] = Field(default_factory=list, description="who may approve (empty: anyone named)")


WaveGate = Annotated[SoakGate | ApprovalGate, Field(discriminator="type")]


class Rollout(_Strict):
    selector: Selector
    waves: Waves = Field(default_factory=lambda: list[int | str]([1, "100%"]), min_length=1)
    max_in_flight: int = Field(default=5, ge=1, le=200, alias="maxInFlight")
    failure_budget: int | str = Field(default=0, alias="failureBudget")
    gates: list[WaveGate] = Field(default_factory=list, description="between waves, in order")

    @field_validator("failure_budget")
    @classmethod
    def _budget(cls, v: int | str) -> int | str:
        if (isinstance(v, int) and v < 0) or (isinstance(v, str) and not _PERCENT.match(v.strip())):
            raise ValueError(f"failureBudget is a count >= 0 or a percentage like '10%', got {v!r}")
        return v

    def plan(self, targets: list[str]) -> list[list[str]]:
        """Cumulative boundaries -> waves; whatever the last boundary leaves out forms a final wave."""
        return plan_waves(self.waves, targets)

    def budget(self, total: int) -> int:
        if isinstance(self.failure_budget, int):
            return self.failure_budget
        m = _PERCENT.match(self.failure_budget.strip())
        assert m is not None
        return math.floor(total * float(m.group(1)) / 100)


class RolloutInput(_Strict):
    operation: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    rollout: Rollout
    garden: GardenRef = Field(default_factory=GardenRef)

    @field_validator("operation")
    @classmethod
    def _op(cls, v: str) -> str:
        if v not in OPERATIONS:
            raise ValueError(f"operation {v!r} cannot run in waves; one of {', '.join(OPERATIONS)}")
        return v

    @model_validator(mode="after")
    def _args(self) -> RolloutInput:
        """The operation's arguments must validate for a target now, not inside the workflow."""
        import definitions.cluster_day2  # noqa: F401 - registers rotate-credentials / hibernate

        for key in ("name", "project_namespace", "garden"):
            if key in self.with_:
                raise ValueError(f"with.{key} is set per target by the rollout; remove it")
        model = REGISTRY.get(self.operation).args_model
        try:
            model.model_validate({**self.with_, "name": "target", "project_namespace": self.rollout.selector.namespace})
        except ValidationError as exc:
            problems = "; ".join(f"with.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"arguments for {self.operation}: {problems}") from None
        return self


class TargetStatus(BaseModel):
    name: str
    #: pending, frozen, running, succeeded, failed, skipped
    state: str = "pending"
    message: str = ""


class WaveStatus(BaseModel):
    index: int
    #: pending, running, gate, done, stopped
    state: str = "pending"
    gate: str = ""
    targets: list[TargetStatus] = Field(default_factory=list)


class RolloutStatus(BaseModel):
    #: selecting, running, paused, gate, done, stopped, aborted
    state: str = "selecting"
    message: str = ""
    failures: int = 0
    budget: int = 0
    waves: list[WaveStatus] = Field(default_factory=list)


class RolloutResult(BaseModel):
    state: str
    succeeded: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    skipped: dict[str, str] = Field(default_factory=dict)
    untouched: list[str] = Field(default_factory=list)
    waves: list[WaveStatus] = Field(default_factory=list)


class SelectInput(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    selector: Selector
    garden: GardenRef = Field(default_factory=GardenRef)


class WaveApproval(BaseModel):
    wave: int
    approver: str
    comment: str = ""


class AbortRequest(BaseModel):
    by: str
    reason: str


REGISTRY.register(
    StepType(
        name="fleet.rollout",
        kind=StepKind.WORKFLOW,
        target="FleetRolloutWorkflow",
        task_queue=queues.GARDENER,
        args_model=RolloutInput,
        outputs_model=RolloutResult,
        description="Run a cluster operation over selected shoots in waves (canary, maxInFlight, budget, gates)",
        default_timeout=timedelta(days=7),
        non_retryable_errors=(*NON_RETRYABLE, "SelectorMatchesNothing"),
    )
)
