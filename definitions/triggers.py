"""What operators declare for the webhook gateway: routes, their authentication, and the rules that
turn an incoming event into a workflow start or a signal.

A route binds a *source* (a payload format the gateway understands: `docker-registry`,
`alertmanager`, `cloudevents`, `boot-callback`, `pipeline`; see ``triggers/sources``) to a URL path,
an authentication method and a list of rules. Each rule has a CEL condition over ``event`` (the
source's normalised view of one event) and a target: a pipeline, a step type of kind workflow, or a
signal to a (possibly not yet running) workflow. Target values may hold ``${{ }}`` templates over
``event``, the same expression language pipelines use.

Secrets (HMAC keys, bearer tokens) are references only; the gateway resolves them at run time, so
rotating a key means changing the file or variable the reference points at. Several keys may be
listed per route: all are accepted, which is how a rotation overlaps old and new senders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from definitions.secrets import SecretRef
from definitions.validate import DefinitionError, Problem, load_yaml, pydantic_problems

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
DEFAULT_MAX_BODY = 1024 * 1024


class _Strict(BaseModel):
    """Fields are written in camelCase in YAML (like pipelines); snake_case is accepted too."""

    model_config = ConfigDict(
        hide_input_in_errors=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )


class HmacAuth(_Strict):
    """HMAC-SHA256 over ``<timestamp>.<body>``; header ``t=<unix seconds>,v1=<hex>[,v1=<hex>...]``."""

    type: Literal["hmac"] = "hmac"
    secrets: list[SecretRef] = Field(min_length=1, description="key references; any of them verifies (rotation)")
    header: str = "X-Apeiro-Signature"
    tolerance_seconds: int = Field(
        default=300, ge=1, le=3600, description="how far the signed timestamp may be from now (replay window)"
    )


class BearerAuth(_Strict):
    """``Authorization: Bearer <token>``: for senders that can only add a static header."""

    type: Literal["bearer"] = "bearer"
    tokens: list[SecretRef] = Field(min_length=1, description="token references; any of them is accepted")


class NoAuth(_Strict):
    """No authentication: only for routes reachable from a trusted network. Must be asked for explicitly."""

    type: Literal["none"] = "none"


Auth = Annotated[HmacAuth | BearerAuth | NoAuth, Field(discriminator="type")]


class WorkflowStart(_Strict):
    """The workflow a signal-with-start creates when the signalled workflow does not exist yet."""

    workflow: str = Field(description="workflow type, e.g. ServerProvisionWorkflow")
    task_queue: str
    args: Any = Field(default=None, description="the workflow's single argument (templates over event)")


class Target(_Strict):
    """Exactly one of: ``pipeline`` (+ ``inputs``), ``step`` (+ ``with``), ``signal`` (+ ``workflow_id``)."""

    pipeline: str | None = Field(default=None, description="pipeline name in the library (may be a template)")
    inputs: dict[str, Any] | str = Field(default_factory=dict, description="pipeline inputs (templates allowed)")
    step: str | None = Field(default=None, description="a registered step type of kind workflow")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="the step's arguments")
    signal: str | None = Field(default=None, description="signal name")
    workflow_id: str | None = Field(default=None, description="id of the signalled workflow (template)")
    args: Any = Field(default="${{ event }}", description="the signal's argument (template)")
    start: WorkflowStart | None = Field(default=None, description="signal-with-start: start this if absent")
    id: str | None = Field(
        default=None, description="workflow id for pipeline/step targets (template); default: <route>-<event id>"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        given = [k for k in ("pipeline", "step", "signal") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a target has exactly one of 'pipeline', 'step' or 'signal'")
        if self.signal is not None and not self.workflow_id:
            raise ValueError("a signal target needs 'workflow_id'")
        return self


class Rule(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    when: str = Field(default="true", description="CEL over `event`; the first rule that is true wins")
    target: Target


class Route(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    source: str = Field(
        description="payload format: docker-registry, alertmanager, cloudevents, boot-callback, pipeline"
    )
    path: str | None = Field(default=None, description="URL path; default /hooks/<name>")
    description: str = ""
    auth: Auth
    rules: list[Rule] = Field(default_factory=list, description="empty: the source's default rules")
    max_body_bytes: int | None = Field(default=None, ge=64)

    @property
    def url_path(self) -> str:
        return self.path or f"/hooks/{self.name}"


class GatewayConfig(_Strict):
    api_version: str = Field(default="apeiro.dev/v1alpha1", alias="apiVersion")
    kind: Literal["WebhookGateway"] = "WebhookGateway"
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=64)
    ui_url: str | None = Field(default=None, description="Temporal UI base for links (default: APEIRO_UI_URL)")
    key_cache_seconds: float = Field(default=30, ge=0, description="how long resolved keys are cached (rotation)")
    body_timeout_seconds: float = Field(
        default=10, gt=0, le=300, description="a body not fully received within this time is refused (408)"
    )
    ready_cache_seconds: float = Field(
        default=1.5, ge=0, le=30, description="how long /readyz reuses its last answer about Temporal"
    )
    routes: list[Route] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> GatewayConfig:
        names = [r.name for r in self.routes]
        paths = [r.url_path for r in self.routes]
        dup = {n for n in names if names.count(n) > 1} | {p for p in paths if paths.count(p) > 1}
        if dup:
            raise ValueError(f"route names and paths must be unique; repeated: {', '.join(sorted(dup))}")
        return self


def parse_gateway_config(data: Any, source: str = "") -> GatewayConfig:
    from pydantic import ValidationError

    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(pydantic_problems(exc), source) from None


def load_gateway_config(path: Path) -> GatewayConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise DefinitionError([Problem("", f"cannot read {path}: {exc.strerror}")], str(path)) from None
    return parse_gateway_config(load_yaml(text, str(path)), str(path))
