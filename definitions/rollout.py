"""Waves for fleet steps: the ``fleet.rollout`` step type runs one operation over the targets a label
selector picks, wave by wave: a cluster operation over shoots (``selector.kind: shoot``, the default)
or a server operation over a site's discovered servers (``selector.kind: server``).

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

Servers (``server.firmware`` | ``server.bios`` | ``server.image``; children on the ``redfish`` queue)::

  operation: server.firmware
  with: {firmware: [{image_uri: "http://images/bios-2.0.0.bin", component: BIOS, version: "2.0.0"}]}
  site: {...}                           # the site definition (BMCs, credentials by reference, labels)
  rollout:
    selector: {kind: server, site: edge-7, matchLabels: {rack: r1}}
    inUse: drain                        # skip | drain | proceed (a server in use: powered On)
    waves: [1, "50%", "100%"]

Pause, resume and abort are signals; approval of a wave gate is the ``approve_wave`` update; the
``status`` query lists every wave and every target. The freeze is checked before every target.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from definitions import queues
from definitions.cluster import NON_RETRYABLE, GardenRef
from definitions.durations import Duration
from definitions.freeze import hold_bound
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
from definitions.promotion_runs import GateProgress, GateStatus
from definitions.server.fleet import SERVER_OPERATIONS, InUsePolicy, ServerTarget, ironcore_refusal
from definitions.server.messages import ServerRef
from definitions.server.site import SiteDefinition, normalise_url
from definitions.steptypes import REGISTRY, StepKind, StepType
from definitions.waves import PERCENT, Waves, plan_waves

#: Cluster operations a rollout may run per shoot (each takes ``name`` and ``project_namespace``).
CLUSTER_OPERATIONS = ("cluster.upgrade", "cluster.rotate-credentials", "cluster.hibernate")
#: Every operation a rollout may run per target; server operations need ``selector.kind: server``.
OPERATIONS = (*CLUSTER_OPERATIONS, *SERVER_OPERATIONS)
#: Per-target fields a rollout sets itself (refused in ``with``).
_PER_TARGET = {
    "shoot": ("name", "project_namespace", "garden"),
    "server": ("operation", "server", "site", "backend", "in_use", "drain_timeout_s"),
}
_PERCENT = PERCENT


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, hide_input_in_errors=True)


class Selector(_Strict):
    kind: Literal["shoot", "server"] = Field(
        default="shoot", description="shoot: from the garden API; server: from the site's inventory"
    )
    namespace: str = "garden-edge"
    site: str | None = Field(default=None, description="kind server: the site's name (default: site.name)")
    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")
    names: list[str] | None = Field(
        default=None, description="only these shoots / server identities (after the labels)"
    )

    def label_selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.match_labels.items()))


#: Gates between waves: the promotion's own gate models (and, in the workflow, its evaluators).
WaveGate = Annotated[
    SoakGate | PrometheusGate | HttpProbeGate | ApprovalGate | TimeWindowGate, Field(discriminator="type")
]


class Rollout(_Strict):
    selector: Selector
    waves: Waves = Field(default_factory=lambda: list[int | str]([1, "100%"]), min_length=1)
    max_in_flight: int = Field(default=5, ge=1, le=200, alias="maxInFlight")
    failure_budget: int | str = Field(default=0, alias="failureBudget")
    gates: list[WaveGate] = Field(default_factory=list, description="between waves, in order")
    in_use: InUsePolicy = Field(
        default="skip",
        alias="inUse",
        description="servers only: a server in use (powered On) is skipped, drained (graceful shutdown, "
        "then ForceOff after drainTimeout; powered on again after) or taken down at once (proceed)",
    )
    drain_timeout: Duration = Field(default=timedelta(minutes=5), alias="drainTimeout")
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
    site: SiteDefinition | None = Field(default=None, description="kind server: the site whose servers roll")
    server_queue: str = Field(
        default=queues.REDFISH, alias="serverQueue", description="kind server: task queue of the redfish workers"
    )
    #: Fills in ``rollout.defaults.prometheus`` from a pipeline value, so the rollout itself stays literal
    #: and is validated in full before the pipeline starts (as ``promotion.run``'s ``prometheus``).
    prometheus: str | None = None
    #: Bounded histories: a rollout whose targets a freeze holds continues as new once its history has
    #: this many events (docs/fleet.md, "A long freeze").
    continue_as_new_after: int = hold_bound("continueAsNewAfter")
    #: Set by the rollout itself when it continues as new: where it stood (None when a person starts it;
    #: not part of the schema users see).
    carried: SkipJsonSchema[RolloutCarry | None] = None

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

        kind = self.rollout.selector.kind
        if (self.operation in SERVER_OPERATIONS) != (kind == "server"):
            want = "server" if self.operation in SERVER_OPERATIONS else "shoot"
            raise ValueError(f"operation {self.operation} runs over {want}s: set rollout.selector.kind: {want}")
        for key in _PER_TARGET[kind]:
            if key in self.with_:
                raise ValueError(f"with.{key} is set per target by the rollout; remove it")
        model = REGISTRY.get(self.operation).args_model
        try:
            if kind == "server":
                self._check_site()
                model.model_validate(
                    {
                        **self.with_,
                        **self.server_args(
                            ServerTarget(
                                identity="target", bmc_url="http://target", system_path="/redfish/v1/Systems/1"
                            ),
                            resolve=False,
                        ),
                    }
                )
            else:
                model.model_validate(
                    {**self.with_, "name": "target", "project_namespace": self.rollout.selector.namespace}
                )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(['with', *map(str, e['loc'])])}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise ValueError(f"arguments for {self.operation}: {problems}") from None
        return self

    def _check_site(self) -> None:
        if self.site is None:
            raise ValueError("site: a server rollout needs the site definition (its BMCs and credentials)")
        sel = self.rollout.selector
        if sel.site is not None and sel.site != self.site.name:
            raise ValueError(f"rollout.selector.site {sel.site!r} is not the site given ({self.site.name!r})")
        problems = self.site.problems()
        if problems:
            raise ValueError("site: " + "; ".join(problems))
        if self.site.backend == "ironcore":
            raise ValueError(ironcore_refusal(self.site.name, SERVER_OPERATIONS[self.operation]))

    def server_args(self, target: ServerTarget, resolve: bool = True) -> dict[str, Any]:
        """The per-target arguments of a server operation (``with`` gives the rest)."""
        assert self.site is not None
        conns = {c.url: c for c in self.site.connections()}
        conn = conns.get(normalise_url(target.bmc_url)) if resolve else next(iter(conns.values()), None)
        if conn is None:
            raise ValueError(f"server {target.identity}: BMC {target.bmc_url} is not in site {self.site.name}")
        ref = ServerRef(identity=target.identity, bmc=conn, system_path=target.system_path)
        return {
            "operation": SERVER_OPERATIONS[self.operation],
            "server": ref.model_dump(),
            "site": self.site.name,
            "backend": self.site.backend,
            "in_use": self.rollout.in_use,
            "drain_timeout_s": max(1, int(self.rollout.drain_timeout.total_seconds())),
        }


class TargetStatus(BaseModel):
    name: str
    #: pending, frozen, running, succeeded, failed, skipped, in-sync (servers: nothing differed)
    state: str = "pending"
    message: str = ""
    #: servers: what differed from the desired state (e.g. "BIOS 1.0.0 -> 2.0.0")
    drift: list[str] = Field(default_factory=list)


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
    #: How many times the rollout continued as new (a long freeze held its targets, or a long gate).
    continued: int = 0


class RolloutResult(BaseModel):
    state: str
    message: str = ""
    succeeded: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    skipped: dict[str, str] = Field(default_factory=dict)
    untouched: list[str] = Field(default_factory=list)
    in_sync: list[str] = Field(default_factory=list, description="servers that already matched (not touched)")
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


class RolloutCarry(BaseModel):
    """What a rollout hands the next run of its chain when it continues as new (a long freeze, or a
    long gate between waves): the selected targets (never selected again), every wave's and target's
    state with the gates' records, failures and budget, approvals, pause and abort, the open gate's
    progress. Finished targets and decided gates are never run again."""

    continued: int = Field(ge=1)
    wave: int = Field(ge=0, description="the wave the next run goes on with")
    gates_done: bool = Field(description="that wave's gates have passed (they do not run again)")
    status: RolloutStatus
    servers: list[ServerTarget] = Field(default_factory=list)
    approvals: list[WaveApproval] = Field(default_factory=list)
    paused: bool = False
    abort: AbortRequest | None = None
    promotion_gates: bool = True
    #: The open gate of ``wave`` when the rollout continued as new in the middle of its gates: its
    #: deadline, Error retries and backoff, the evaluator's counters and timer (it resumes there).
    gates: list[GateProgress] = Field(default_factory=list)


RolloutInput.model_rebuild()

REGISTRY.register(
    StepType(
        name="fleet.rollout",
        kind=StepKind.WORKFLOW,
        target="FleetRolloutWorkflow",
        task_queue=queues.GARDENER,
        args_model=RolloutInput,
        outputs_model=RolloutResult,
        description="Run a cluster operation over selected shoots, or a server operation (firmware, BIOS, "
        "image; drift-based) over a site's servers, in waves (canary, maxInFlight, budget, gates)",
        default_timeout=timedelta(days=7),
        non_retryable_errors=(*NON_RETRYABLE, "SelectorMatchesNothing", "InvalidInput"),
    )
)
