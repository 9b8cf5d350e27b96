"""Ring promotion: what operators declare, validated in full before a rollout starts.

A promotion pipeline names one artifact (an OCM component in a source repository, with the signatures
it must carry) or a release (several component versions pinned behind one vector component, as
Konfidence's VectorTemplate assembles one), a version policy, calendars, defaults for gates, and rings
in order. Each ring deploys the version to its targets (Konfidence ``Stage`` objects,
``konfidence.cloud/v1alpha1``, whose ``spec.vector`` names the component version) with a bounded
parallelism, after its entry gates and before its verify gates; it may flip feature flags (flagd flag
files) and reverts them on rollback.

Everything here is data (pydantic), importable inside the workflow sandbox. The one check that needs a
native parser, PromQL, runs only outside workflows (:func:`check_promql`), from the CLI, the pipeline
validation, and the promotion workflow's first activity.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from definitions import queues
from definitions.durations import Duration
from definitions.steptypes import StepTable, register_all
from definitions.waves import Waves, plan_waves

API_VERSION = "apeiro.dev/v1alpha1"
KIND = "Promotion"
STAGE_GROUP = "konfidence.cloud"
STAGE_VERSION = "v1alpha1"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel)


def _dns_name(value: str, what: str) -> str:
    if not _NAME.match(value) or len(value) > 63:
        raise ValueError(f"{what} {value!r} must be a DNS label (lower case letters, digits, '-')")
    return value


# --- artifact and version policy ---------------------------------------------------------------------


class Artifact(_Model):
    """The OCM component promoted: ``component`` in ``repository`` (an OCI base URL or ``env:NAME``)."""

    component: str = Field(min_length=1, examples=["example.apeiro.dev/edge-app"])
    #: Where the version was published (OCI base URL); ``promotion.run``'s ``repository`` argument overrides it.
    repository: str = ""
    #: Signature names the version must carry (checked by the OCM layer before the first ring).
    required_signatures: list[str] = Field(default_factory=list)


def _ocm_component(value: str) -> str:
    from definitions.stage import COMPONENT

    if not COMPONENT.match(value):
        raise ValueError(f"{value!r} is not an OCM component name (a DNS domain and a path, e.g. example.org/app)")
    return value


class ReleaseComponent(_Model):
    """One component version a release pins."""

    component: str = Field(min_length=1, examples=["example.apeiro.dev/edge-app"])
    version: str = Field(min_length=1, examples=["1.4.2"])

    @field_validator("component")
    @classmethod
    def _component(cls, value: str) -> str:
        return _ocm_component(value)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        from definitions.stage import VERSION

        if not VERSION.match(value):
            raise ValueError(f"{value!r} is not a version (an OCI tag)")
        return value


class Release(_Model):
    """Several component versions promoted as one (a release vector, as Konfidence's ``VectorTemplate``
    assembles one): ``vector`` is the OCM component that pins them (its ``componentReferences``), published
    in ``repository`` at the promotion's version. Every Stage of a ring is pointed at
    ``<repository>//<vector>:<version>``, so the components deploy, gate and roll back together."""

    #: The vector component (Konfidence: the VectorTemplate's ``uploadTarget`` component).
    vector: str = Field(min_length=1, examples=["example.apeiro.dev/edge-release"])
    #: Where the vector version is published; ``promotion.run``'s ``repository`` argument overrides it.
    repository: str = ""
    #: The component versions the vector pins; each component once.
    components: list[ReleaseComponent] = Field(min_length=1)
    required_signatures: list[str] = Field(default_factory=list)

    @field_validator("vector")
    @classmethod
    def _vector(cls, value: str) -> str:
        return _ocm_component(value)

    def pins(self) -> dict[str, str]:
        return {c.component: c.version for c in self.components}

    def as_artifact(self) -> Artifact:
        """What a Stage runs: the vector component (its version is the promotion's version)."""
        return Artifact(component=self.vector, repository=self.repository, required_signatures=self.required_signatures)


class VersionPolicy(_Model):
    #: A newer version supersedes (stops and locks) older runs of the same pipeline.
    supersede: bool = True
    #: A version that failed a ring cannot be promoted again unless overridden with a reason.
    block_failed: bool = True


# --- calendars -------------------------------------------------------------------------------------

Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
WEEKDAYS: tuple[str, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class Window(_Model):
    """A recurring window: on ``days`` (all when empty) from ``start`` to ``end`` (local time, HH:MM).

    ``end`` at or before ``start`` crosses midnight. ``from``/``until`` bound the recurrence (absolute
    instants with a zone), so a one-off freeze is ``{from: ..., until: ...}`` with the default times.
    """

    days: list[Weekday] = Field(default_factory=list)
    start: str = "00:00"
    end: str = "00:00"
    from_: datetime | None = Field(default=None, alias="from")
    until: datetime | None = None
    note: str = ""

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r} is not a time of day; write HH:MM (24 h)")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Window:
        for name, value in (("from", self.from_), ("until", self.until)):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-12-20T00:00:00Z)")
        if self.from_ and self.until and self.until <= self.from_:
            raise ValueError("until must be after from")
        return self


class Calendar(_Model):
    """Allowed instants: inside an ``allow`` window (or anywhere when there are none) and no ``deny``."""

    time_zone: str = "UTC"
    allow: list[Window] = Field(default_factory=list)
    deny: list[Window] = Field(default_factory=list)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z_]+(/[A-Za-z0-9_+\-]+)*$", value):
            raise ValueError(f"{value!r} is not an IANA time zone name (e.g. Europe/Berlin)")
        return value


# --- gates -----------------------------------------------------------------------------------------


class GateOutcome(StrEnum):
    PASSED = "Passed"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"
    TIMED_OUT = "TimedOut"
    OVERRIDDEN = "Overridden"


class _Gate(_Model):
    name: str = ""
    #: The whole gate's limit; TimedOut afterwards (None: the defaults' timeout).
    timeout: Duration | None = None


class SoakGate(_Gate):
    type: Literal["soak"]
    duration: Duration


class PrometheusGate(_Gate):
    """Query Prometheus every ``interval``, ``count`` times; ``successCondition`` is CEL over ``result``
    (the first sample's value, a float). Failed after more than ``failureLimit`` failed measurements;
    Error after ``consecutiveErrorLimit`` queries in a row that could not run."""

    type: Literal["prometheus"]
    query: str = Field(min_length=1)
    success_condition: str = Field(min_length=1, examples=["result < 0.05"])
    address: str | None = None  # None: the defaults' prometheus address
    interval: Duration = timedelta(seconds=30)
    count: int = Field(default=3, ge=1, le=1000)
    failure_limit: int = Field(default=0, ge=0)
    consecutive_error_limit: int = Field(default=4, ge=1)
    no_data: Literal["pass", "fail", "inconclusive", "error"] = "inconclusive"


class HttpProbeGate(_Gate):
    type: Literal["httpProbe"]
    url: str = Field(min_length=1)
    expect_status: list[int] = Field(default_factory=lambda: [200])
    #: CEL over ``body`` (the decoded JSON) and ``status``, e.g. ``body.status == "ok"``.
    condition: str | None = None
    consecutive_successes: int = Field(default=1, ge=1, le=100)
    interval: Duration = timedelta(seconds=10)
    failure_limit: int = Field(default=3, ge=0)


class ApprovalGate(_Gate):
    type: Literal["approval"]
    approvers: list[str] = Field(default_factory=list)
    quorum: int = Field(default=1, ge=1, le=50)
    message: str = "approve the promotion"

    @model_validator(mode="after")
    def _reachable(self) -> ApprovalGate:
        if self.approvers and self.quorum > len(self.approvers):
            raise ValueError(f"quorum {self.quorum} exceeds the {len(self.approvers)} eligible approvers")
        return self


class TimeWindowGate(_Gate):
    type: Literal["timeWindow"]
    calendar: str


class TestSuiteGate(_Gate):
    """POST ``url`` to trigger the suite; the result arrives by the ``report_test_result`` signal, or by
    polling ``resultUrl`` (JSON ``{"passed": bool}`` once finished) every ``interval``."""

    type: Literal["testSuite"]
    url: str = Field(min_length=1)
    result_url: str | None = None
    interval: Duration = timedelta(seconds=30)


class UpstreamVerifiedGate(_Gate):
    type: Literal["upstreamVerified"]
    rings: list[str] = Field(min_length=1)
    min_soak: Duration | None = None


Gate = Annotated[
    SoakGate | PrometheusGate | HttpProbeGate | ApprovalGate | TimeWindowGate | TestSuiteGate | UpstreamVerifiedGate,
    Field(discriminator="type"),
]


# --- rings, targets, flags -------------------------------------------------------------------------


class Target(_Model):
    """A Konfidence Stage on some landscape's Kubernetes API.

    Address it by ``kubeconfig`` (a path, or ``env:NAME`` holding a path) or by ``landscape`` name:
    ``APEIRO_LANDSCAPE_<NAME>_KUBECONFIG``, and for the local landscape ``APEIRO_GARDEN_KUBECONFIG``.
    """

    stage: str = Field(min_length=1)
    namespace: str = "default"
    kubeconfig: str | None = None
    landscape: str | None = None
    #: Go through Konfidence's own records: create a ``VectorPromotion`` of this
    #: ``VectorPromotionConfig`` (the vector pinned, the next ``sequence``, this Stage as target) and let
    #: Konfidence write the Stage, instead of patching ``spec.vector`` directly.
    vector_promotion_config: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_address(self) -> Target:
        if self.kubeconfig is not None and self.landscape is not None:
            raise ValueError("address a target by kubeconfig or by landscape, not both")
        return self


class FlagAction(_Model):
    """Set flag ``flag`` in the ring's flagd flag file: its default variant, and variants if given."""

    flag: str = Field(min_length=1)
    default_variant: str
    variants: dict[str, Any] | None = None
    state: Literal["ENABLED", "DISABLED"] = "ENABLED"

    @model_validator(mode="after")
    def _variant_known(self) -> FlagAction:
        if self.variants is not None and self.default_variant not in self.variants:
            raise ValueError(f"defaultVariant {self.default_variant!r} is not one of the variants")
        return self


class Flags(_Model):
    provider: Literal["flagd"] = "flagd"
    #: The flagd flag file (flagd's JSON schema) this ring's flagd instances read.
    path: str = Field(min_length=1)
    actions: list[FlagAction] = Field(default_factory=list)


class Ring(_Model):
    name: str
    #: Rings whose verification this ring waits for (default: the previous ring).
    upstream: list[str] | None = None
    targets: list[Target] = Field(min_length=1)
    parallelism: int = Field(default=1, ge=1, le=100)
    entry_gates: list[Gate] = Field(default_factory=list)
    flags: Flags | None = None
    verify_gates: list[Gate] = Field(default_factory=list)
    #: Roll back when a gate ends in Error (after its retries) too, not only on Failed.
    rollback_on_error: bool = False
    #: How long a Stage may take to report Ready after its vector changed.
    ready_timeout: Duration = timedelta(minutes=10)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_name(value, "ring name")


class LandscapeWaves(_Model):
    """The same promotion over several landscapes in waves: every landscape a target (its Stage ``stage``
    in ``namespace``), in order, the first wave the canary. Expands into one ring a wave (``canary``,
    ``wave-1``, ...), so each wave deploys, gates and rolls back like a ring; ``waves`` are cumulative
    boundaries as in ``fleet.rollout`` (a count or a percentage of all landscapes)."""

    landscapes: list[str] = Field(min_length=1)
    stage: str = Field(min_length=1)
    namespace: str = "default"
    waves: Waves = Field(default_factory=lambda: list[int | str]([1, "100%"]), min_length=1)
    max_in_flight: int = Field(default=5, ge=1, le=100)
    #: Before every wave after the canary (e.g. an approval).
    entry_gates: list[Gate] = Field(default_factory=list)
    #: After every wave, the canary included (e.g. a soak and a metric).
    verify_gates: list[Gate] = Field(default_factory=list)
    rollback_on_error: bool = False
    ready_timeout: Duration = timedelta(minutes=10)

    @field_validator("landscapes")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        twice = sorted({n for n in value if value.count(n) > 1})
        if twice:
            raise ValueError(f"landscape(s) listed twice: {', '.join(twice)}")
        return value

    def rings(self) -> list[Ring]:
        out = []
        for i, wave in enumerate(plan_waves(self.waves, self.landscapes)):
            out.append(
                Ring(
                    name="canary" if i == 0 else f"wave-{i}",
                    targets=[Target(stage=self.stage, namespace=self.namespace, landscape=n) for n in wave],
                    parallelism=self.max_in_flight,
                    entry_gates=[] if i == 0 else [g.model_copy(deep=True) for g in self.entry_gates],
                    verify_gates=[g.model_copy(deep=True) for g in self.verify_gates],
                    rollback_on_error=self.rollback_on_error,
                    ready_timeout=self.ready_timeout,
                )
            )
        return out


class Defaults(_Model):
    prometheus: str | None = None  # address, e.g. http://127.0.0.1:9090 or env:APEIRO_PROMETHEUS_URL
    gate_timeout: Duration = timedelta(hours=24)
    #: Backoff of gates that end in Error: first retry after this, doubling, at most ``errorRetries``.
    error_backoff: Duration = timedelta(seconds=30)
    error_retries: int = Field(default=3, ge=0, le=50)


class PromotionSpec(_Model):
    #: One component (its version is the promotion's version) ...
    artifact: Artifact | None = None
    #: ... or several pinned together as a release vector (the promotion's version names the vector).
    release: Release | None = None
    version_policy: VersionPolicy = Field(default_factory=VersionPolicy)
    calendars: dict[str, Calendar] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    #: Rings in order, or ``landscapeWaves`` (which fills the rings in: one a wave).
    rings: list[Ring] = Field(default_factory=list)
    landscape_waves: LandscapeWaves | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> PromotionSpec:
        if (self.artifact is None) == (self.release is None):
            raise ValueError(
                "spec.release: " + ("give artifact or release, not both" if self.artifact is not None else
                                    "missing: give artifact (one component) or release (several components)")
            )
        if self.landscape_waves is not None:
            expanded = self.landscape_waves.rings()
            if self.rings and self.rings != expanded:  # equal: a definition that went through this already
                raise ValueError("spec.landscapeWaves: give rings or landscapeWaves, not both")
            self.rings = expanded
        if not self.rings:
            raise ValueError("spec.rings: give at least one ring (or landscapeWaves)")
        return self

    @property
    def subject(self) -> Artifact:
        """The component every Stage is pointed at: the artifact, or the release's vector."""
        if self.release is not None:
            return self.release.as_artifact()
        assert self.artifact is not None
        return self.artifact

    def pins(self, version: str) -> dict[str, str]:
        """Component -> version this promotion puts on its Stages."""
        if self.release is not None:
            return self.release.pins()
        assert self.artifact is not None
        return {self.artifact.component: version}


class PromotionMetadata(_Model):
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_name(value, "promotion name")


class PromotionPipeline(_Model):
    api_version: Literal["apeiro.dev/v1alpha1"] = "apeiro.dev/v1alpha1"
    kind: Literal["Promotion"] = "Promotion"
    metadata: PromotionMetadata
    spec: PromotionSpec

    @model_validator(mode="after")
    def _structure(self) -> PromotionPipeline:
        problems = structure_problems(self)
        if not problems and not _in_workflow():
            problems = check_promql(self)
        if problems:
            raise ValueError("; ".join(f"{path}: {msg}" for path, msg in problems))
        return self

    @property
    def name(self) -> str:
        return self.metadata.name

    def ring(self, name: str) -> Ring:
        return next(r for r in self.spec.rings if r.name == name)

    def upstream_of(self, index: int) -> list[str]:
        ring = self.spec.rings[index]
        if ring.upstream is not None:
            return list(ring.upstream)
        return [self.spec.rings[index - 1].name] if index > 0 else []


def gate_names(gates: list[Any]) -> list[str]:
    """A name for each gate: its own, else its type, numbered when there are several of one type."""
    counts: dict[str, int] = {}
    for g in gates:
        counts[g.type] = counts.get(g.type, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for g in gates:
        seen[g.type] = seen.get(g.type, 0) + 1
        out.append(g.name or (g.type if counts[g.type] == 1 else f"{g.type}-{seen[g.type]}"))
    return out


def ring_gates(ring: Ring) -> list[tuple[str, str, Any]]:
    """(phase, name, gate) for every gate of a ring; unnamed gates are called by their type, numbered
    when a ring has several of one type."""
    all_gates = [("entry", g) for g in ring.entry_gates] + [("verify", g) for g in ring.verify_gates]
    names = gate_names([g for _, g in all_gates])
    return [(phase, name, g) for (phase, g), name in zip(all_gates, names, strict=True)]


def gate_problems(path: str, gate: Any, calendars: dict[str, Calendar]) -> list[tuple[str, str]]:
    """One gate's own cross-field checks: a known calendar, CEL conditions that parse."""
    from definitions.expressions import ExpressionError, parse

    problems: list[tuple[str, str]] = []
    if isinstance(gate, TimeWindowGate) and gate.calendar not in calendars:
        problems.append((f"{path}.calendar", f"unknown calendar {gate.calendar!r}; declared: "
                         f"{', '.join(calendars) or 'none'}"))
    for field_name in ("success_condition", "condition"):
        expr = getattr(gate, field_name, None)
        if expr:
            try:
                parse(expr)
            except ExpressionError as exc:
                problems.append((f"{path}.{to_camel(field_name)}", str(exc)))
    return problems


def promql_problem(gate: Any) -> str | None:
    """The PromQL parser's complaint about a Prometheus gate's query (outside workflows only)."""
    if not isinstance(gate, PrometheusGate) or _in_workflow():
        return None
    import promql_parser  # native (Rust) parser; imported lazily to keep this module sandbox-safe

    try:
        promql_parser.parse(gate.query)
    except (ValueError, RuntimeError) as exc:
        return f"unparsable PromQL: {exc}"
    return None


def structure_problems(p: PromotionPipeline) -> list[tuple[str, str]]:
    """Cross-field checks (pure): duplicate/unknown rings, gate names, calendars, CEL conditions."""
    problems: list[tuple[str, str]] = []
    if p.spec.release is not None:
        first: dict[str, int] = {}
        for i, c in enumerate(p.spec.release.components):
            if c.component in first:
                problems.append((f"spec.release.components[{i}].component",
                                 f"component {c.component!r} is pinned twice (also spec.release.components"
                                 f"[{first[c.component]}]); a release pins each component once"))
            first.setdefault(c.component, i)
            if c.component == p.spec.release.vector:
                problems.append((f"spec.release.components[{i}].component",
                                 f"{c.component!r} is the release's own vector component"))
    seen: dict[str, int] = {}
    for i, ring in enumerate(p.spec.rings):
        base = f"spec.rings[{i}]"
        if ring.name in seen:
            problems.append((f"{base}.name", f"duplicate ring {ring.name!r} (also spec.rings[{seen[ring.name]}])"))
        for j, up in enumerate(ring.upstream or []):
            if up == ring.name:
                problems.append((f"{base}.upstream[{j}]", "a ring cannot be its own upstream"))
            elif up not in seen:
                known = [r.name for r in p.spec.rings[:i]]
                problems.append((f"{base}.upstream[{j}]", f"unknown upstream ring {up!r}; rings before it: "
                                 f"{', '.join(known) or 'none'}"))
        seen.setdefault(ring.name, i)
        stages = [(t.namespace, t.stage, t.kubeconfig, t.landscape) for t in ring.targets]
        if len(set(stages)) != len(stages):
            problems.append((f"{base}.targets", "a Stage is listed twice"))
        names: set[str] = set()
        entry = len(ring.entry_gates)
        for n, (phase, name, gate) in enumerate(ring_gates(ring)):
            path = f"{base}.entryGates[{n}]" if phase == "entry" else f"{base}.verifyGates[{n - entry}]"
            if name in names:
                problems.append((f"{path}.name", f"duplicate gate name {name!r} in ring {ring.name!r}"))
            names.add(name)
            problems += gate_problems(path, gate, p.spec.calendars)
            if isinstance(gate, UpstreamVerifiedGate):
                for m, up in enumerate(gate.rings):
                    if up not in seen or up == ring.name:
                        problems.append((f"{path}.rings[{m}]", f"{up!r} is not a ring before {ring.name!r}"))
    return problems


def _in_workflow() -> bool:
    from temporalio import workflow

    return workflow.in_workflow() or workflow.unsafe.in_sandbox()


class PromotionDefinitionError(ValueError):
    """A promotion definition is invalid; ``problems`` lists (path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("invalid promotion:\n" + "\n".join(f"  {p}: {m}" for p, m in problems))


def check_promql(p: PromotionPipeline) -> list[tuple[str, str]]:
    """Parse every Prometheus gate's query with a real PromQL parser (outside workflows only)."""
    problems = []
    for i, ring in enumerate(p.spec.rings):
        for section in ("entryGates", "verifyGates"):
            for k, gate in enumerate(getattr(ring, to_snake(section))):
                problem = promql_problem(gate)
                if problem:
                    problems.append((f"spec.rings[{i}].{section}[{k}].query", problem))
    return problems


def address_problems(p: PromotionPipeline) -> list[tuple[str, str]]:
    """Prometheus gates need an address: their own or the defaults' (the step may fill the defaults in)."""
    problems = []
    for i, ring in enumerate(p.spec.rings):
        entry = len(ring.entry_gates)
        for n, (phase, _, gate) in enumerate(ring_gates(ring)):
            if isinstance(gate, PrometheusGate) and not gate.address and not p.spec.defaults.prometheus:
                where = f"entryGates[{n}]" if phase == "entry" else f"verifyGates[{n - entry}]"
                problems.append((f"spec.rings[{i}].{where}.address",
                                 "no Prometheus address here nor in spec.defaults.prometheus"))
    return problems


def to_snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def validate_promotion(data: Any) -> PromotionPipeline:
    """Validate a definition fully (schema, structure, PromQL); raise PromotionDefinitionError."""
    if isinstance(data, PromotionPipeline):
        pipeline = data
    else:
        try:
            pipeline = PromotionPipeline.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                path = ".".join(str(x) for x in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] == "value_error" and ": " in msg and msg.startswith("spec."):
                    # the cross-field checks report "path: message; path: message" from the root
                    for part in msg.split("; spec."):
                        where, _, what = part.partition(": ")
                        problems.append((where if where.startswith("spec.") else f"spec.{where}", what))
                    continue
                problems.append((path or "(root)", msg))
            raise PromotionDefinitionError(problems) from None
    problems = check_promql(pipeline) + address_problems(pipeline)
    if problems:
        raise PromotionDefinitionError(problems)
    return pipeline


# --- step type: promotion.run ---------------------------------------------------------------------


class PromotionRunArgs(_Model):
    """``with:`` of ``promotion.run``: the definition (inline) and the version to promote."""

    promotion: PromotionPipeline
    version: str = Field(min_length=1)
    requested_by: str | None = None
    #: Promote a version that failed before (blocked) anyway; the reason is audited.
    override_reason: str | None = None
    #: Fill in ``spec.artifact.repository`` / ``spec.defaults.prometheus`` from pipeline values, so the
    #: definition itself stays literal and is validated in full before the pipeline starts.
    repository: str | None = None
    prometheus: str | None = None

    @model_validator(mode="after")
    def _merge(self) -> PromotionRunArgs:
        spec = self.promotion.spec
        if self.repository:
            if spec.release is not None:
                spec.release.repository = self.repository
            if spec.artifact is not None:
                spec.artifact.repository = self.repository
        if self.prometheus:
            spec.defaults.prometheus = self.prometheus
        problems = address_problems(self.promotion)
        if problems:
            raise ValueError("; ".join(f"{p}: {m}" for p, m in problems))
        return self


class RingResult(BaseModel):
    ring: str
    state: str
    attempts: int = 0


class PromotionResult(BaseModel):
    pipeline: str
    version: str
    sequence: int
    state: str
    workflow_id: str
    rings: list[RingResult] = Field(default_factory=list)
    message: str = ""


def promotion_workflow_id(pipeline: str, version: str) -> str:
    """One promotion per (pipeline, version): the id is derived, so starting twice finds the first."""
    return f"promotion-{pipeline}-{version}"


def coordinator_workflow_id(pipeline: str) -> str:
    return f"promotion-coordinator-{pipeline}"


# One row a step type: the table reads as a table.
# fmt: off
STEP_TYPES = register_all([
    StepTable(task_queue=queues.KONFIDENCE).workflow(
        "promotion.run", "PromotionStepWorkflow", PromotionRunArgs, PromotionResult,
        "promote an OCM component version ring by ring with gates (Konfidence Stages)", default_max_attempts=1),
])
# fmt: on
