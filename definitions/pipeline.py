"""The Pipeline definition: a DAG of typed steps, declared in YAML and validated before it runs.

```yaml
apiVersion: apeiro.dev/v1alpha1
kind: Pipeline
metadata: {name: edge-site}
spec:
  inputs:
    site: {type: string, default: edge-1}
  steps:
    - name: discover
      uses: server.discover
      with: {site: "${{ inputs.site }}"}
    - name: provision
      uses: server.provision
      needs: [discover]
      forEach: steps.discover.outputs.servers
      maxParallel: 10
      with: {server: "${{ item }}"}
```

The same models are used by `apeiro validate`, by `apeiro run`, and inside the pipeline workflow.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from definitions.durations import Duration
from definitions.notify import NotifySettings

API_VERSION = "apeiro.dev/v1alpha1"
STEP_NAME = r"^[a-z][a-zA-Z0-9_]{0,62}$"
RESOURCE_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class _Model(BaseModel):
    """Strict models: an unknown field is an error with its path (catches typos like `need:`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel)


class InputType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ARRAY = "array"
    OBJECT = "object"


class InputSpec(_Model):
    """A typed pipeline input. Without a default it is required."""

    type: InputType = InputType.STRING
    description: str = ""
    default: Any = None
    enum: list[Any] | None = None
    #: For arrays: the type of every element.
    items: InputType | None = None


class RetrySpec(_Model):
    """Temporal retry policy for one step (Temporal owns retries; client libraries do not)."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    initial_interval: Duration = timedelta(seconds=1)
    backoff_coefficient: float = Field(default=2.0, ge=1.0, le=10.0)
    maximum_interval: Duration | None = None
    non_retryable_errors: list[str] = Field(default_factory=list)


class Hook(_Model):
    """A step that runs because something else happened: a step's ``cleanup`` when it fails (eject
    virtual media, release a claim), the pipeline's ``finally`` when the run ends. An activity or
    lifecycle step type, or ``core.pipeline`` for a sub-pipeline; its failure is recorded and does not
    change the run's outcome."""

    uses: str = Field(min_length=1, description="a registered step type (not core.wait/core.approval)")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")


class Step(_Model):
    name: str = Field(pattern=STEP_NAME, description="unique in the pipeline; a CEL identifier")
    uses: str = Field(min_length=1, description="a registered step type")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    needs: list[str] = Field(default_factory=list)
    when: str | None = None
    for_each: str | list[Any] | None = None
    max_parallel: int | None = Field(default=None, ge=1, le=10_000)
    retry: RetrySpec | None = None
    timeout: Duration | None = None
    continue_on_error: bool = False
    #: What the run does when this step fails: ``fail`` (cancel its dependants; the default) or
    #: ``pause`` (its dependants wait while an operator retries or skips it: `apeiro retry|skip`).
    on_failure: Literal["fail", "pause"] = "fail"
    #: Runs when this step fails, before its dependants are cancelled or the run pauses.
    cleanup: Hook | None = None
    outputs: dict[str, str] = Field(default_factory=dict)
    description: str = ""

    @field_validator("needs")
    @classmethod
    def _no_duplicate_needs(cls, value: list[str]) -> list[str]:
        seen = set()
        for name in value:
            if name in seen:
                raise ValueError(f"{name!r} is listed twice")
            seen.add(name)
        return value


class StepDefaults(_Model):
    retry: RetrySpec | None = None
    timeout: Duration | None = None


class PipelineSpec(_Model):
    description: str = ""
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    defaults: StepDefaults = Field(default_factory=StepDefaults)
    steps: list[Step] = Field(min_length=1)
    outputs: dict[str, str] = Field(default_factory=dict)
    #: How many steps may run at once (forEach items count per step, against the step's maxParallel).
    max_parallel: int = Field(default=50, ge=1, le=2000)
    #: Notifications when an approval waits, a step fails, the run ends (definitions/notify.py).
    notify: NotifySettings | None = None
    #: Runs once when the run ends, succeeded or failed (not when cancelled); reads ``steps``.
    finally_: Hook | None = Field(default=None, alias="finally")


class Metadata(_Model):
    name: str = Field(pattern=RESOURCE_NAME)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Pipeline(_Model):
    api_version: Literal["apeiro.dev/v1alpha1"]
    kind: Literal["Pipeline"]
    metadata: Metadata
    spec: PipelineSpec

    def step(self, name: str) -> Step:
        for s in self.spec.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def name(self) -> str:
        return self.metadata.name
