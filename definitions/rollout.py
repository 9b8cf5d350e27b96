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
    gates:                              # between waves: the promotion's gate types
      - {type: soak, duration: 10m}
      - {type: prometheus, query: "sum(rate(errors_total[5m]))", successCondition: "result < 0.05", count: 5}
      - {type: httpProbe, url: "https://canary.example/healthz"}
      - {type: timeWindow, calendar: business}
      - {type: approval, approvers: [bob]}
    calendars: {business: {timeZone: Europe/Berlin, allow: [{days: [MO, TU, WE, TH], start: "08:00", end: "17:00"}]}}
    defaults: {prometheus: "http://prometheus:9090", gateTimeout: 2h}
```

Pause, resume and abort are signals; approval of a wave gate is the ``approve_wave`` update; the
``status`` query lists every wave and every target. The freeze is checked before every target.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from definitions import queues
from definitions.cluster import NON_RETRYABLE, GardenRef
from definitions.promotion import (
    ApprovalGate,
    Calendar,
    Defaults,
    HttpProbeGate,
    PrometheusGate,
    SoakGate,
    TimeWindowGate,
    gate_names,
    gate_problems,
    promql_problem,
)
from definitions.promotion_runs import GateStatus
from definitions.steptypes import REGISTRY, StepKind, StepType

#: Operations a rollout may run per target (each takes ``name`` and ``project_namespace``).
OPERATIONS = ("cluster.upgrade", "cluster.rotate-credentials", "cluster.hibernate")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, hide_input_in_errors=True)


class Selector(_Strict):
    namespace: str = "garden-edge"
    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")
    names: list[str] | None = Field(default=None, description="only these shoots (after the labels)")

    def label_selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.match_labels.items()))


#: Gates between waves: the promotion's own gate models (and, in the workflow, its evaluators).
WaveGate = Annotated[
    SoakGate | PrometheusGate | HttpProbeGate | ApprovalGate | TimeWindowGate, Field(discriminator="type")
]


def _size(value: int | str, total: int) -> int:
    """A wave boundary: a count, or a percentage of all targets (rounded up, at least one)."""
    if isinstance(value, int):
        return min(value, total)
    m = _PERCENT.match(value.strip())
    assert m is not None
    return min(total, max(1, math.ceil(total * float(m.group(1)) / 100)))


class Rollout(_Strict):
    selector: Selector
    waves: list[int | str] = Field(default_factory=lambda: list[int | str]([1, "100%"]), min_length=1)
    max_in_flight: int = Field(default=5, ge=1, le=200, alias="maxInFlight")
    failure_budget: int | str = Field(default=0, alias="failureBudget")
    gates: list[WaveGate] = Field(default_factory=list, description="between waves, in order")
    calendars: dict[str, Calendar] = Field(default_factory=dict, description="named calendars of timeWindow gates")
    defaults: Defaults = Field(
        default_factory=Defaults,
        description="gate defaults: prometheus address, gateTimeout, errorBackoff, errorRetries",
    )

    @model_validator(mode="after")
    def _gate_checks(self) -> Rollout:
        """Each gate as the promotion checks it: calendars, CEL, PromQL, a Prometheus address, names."""
        problems: list[tuple[str, str]] = []
        names = gate_names(self.gates)
        for i, gate in enumerate(self.gates):
            path = f"gates[{i}]"
            if names.index(names[i]) != i:
                problems.append((f"{path}.name", f"duplicate gate name {names[i]!r}; name the gates"))
            problems += gate_problems(path, gate, self.calendars)
            if isinstance(gate, ApprovalGate) and "message" not in gate.model_fields_set:
                gate.message = "approve the next wave"
            promql = promql_problem(gate)
            if promql:
                problems.append((f"{path}.query", promql))
        if problems:
            raise ValueError("; ".join(f"{where}: {what}" for where, what in problems))
        return self

    @field_validator("waves")
    @classmethod
    def _waves(cls, v: list[int | str]) -> list[int | str]:
        for w in v:
            if (isinstance(w, int) and w < 1) or (isinstance(w, str) and not _PERCENT.match(w.strip())):
                raise ValueError(f"a wave is a count >= 1 or a percentage like '25%', got {w!r}")
        return v

    @field_validator("failure_budget")
    @classmethod
    def _budget(cls, v: int | str) -> int | str:
        if (isinstance(v, int) and v < 0) or (isinstance(v, str) and not _PERCENT.match(v.strip())):
            raise ValueError(f"failureBudget is a count >= 0 or a percentage like '10%', got {v!r}")
        return v

    def plan(self, targets: list[str]) -> list[list[str]]:
        """Cumulative boundaries -> waves; whatever the last boundary leaves out forms a final wave."""
        total, waves, done = len(targets), [], 0
        for w in self.waves:
            upto = _size(w, total)
            if upto > done:
                waves.append(targets[done:upto])
                done = upto
        if done < total:
            waves.append(targets[done:])
        return waves

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
    #: Fills in ``rollout.defaults.prometheus`` from a pipeline value, so the rollout itself stays literal
    #: and is validated in full before the pipeline starts (as ``promotion.run``'s ``prometheus``).
    prometheus: str | None = None

    @field_validator("operation")
    @classmethod
    def _op(cls, v: str) -> str:
        if v not in OPERATIONS:
            raise ValueError(f"operation {v!r} cannot run in waves; one of {', '.join(OPERATIONS)}")
        return v

    @model_validator(mode="after")
    def _prometheus(self) -> RolloutInput:
        """A Prometheus gate needs an address: its own, ``rollout.defaults.prometheus`` or ``prometheus``."""
        if self.prometheus:
            self.rollout.defaults.prometheus = self.prometheus
        for i, gate in enumerate(self.rollout.gates):
            if isinstance(gate, PrometheusGate) and not gate.address and not self.rollout.defaults.prometheus:
                raise ValueError(
                    f"rollout.gates[{i}].address: no Prometheus address here, in rollout.defaults.prometheus "
                    "nor in prometheus"
                )
        return self

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
    #: The gates before this wave, as the promotion shows its gates (outcome, reason, next check, votes).
    gates: list[GateStatus] = Field(default_factory=list)
    #: Why this wave waits: each open gate with its reason and next check (the ``status`` query fills it).
    pending: str = ""


class RolloutStatus(BaseModel):
    #: selecting, running, paused, gate, done, stopped, aborted
    state: str = "selecting"
    message: str = ""
    failures: int = 0
    budget: int = 0
    waves: list[WaveStatus] = Field(default_factory=list)
    #: Approval gates waiting now, as ``<wave>/<gate>``.
    waiting_approvals: list[str] = Field(default_factory=list)


class RolloutResult(BaseModel):
    state: str
    message: str = ""
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
    #: False: a rejection (fails the gate, which stops the rollout).
    approve: bool = True
    #: The approval gate's name when the wave has several (default: the one waiting).
    gate: str = ""


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
