"""The generic step types the DAG engine needs on its own.

- ``core.echo``      an activity that returns its ``values`` (a no-op; tests, benchmarks, demos)
- ``core.http``      an outbound HTTP call (secrets in headers by reference)
- ``core.wait``      a durable timer (a duration or an absolute time)
- ``core.approval``  waits for people to approve through a Temporal update (validated)
- ``core.pipeline``  runs another pipeline as a child workflow
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator
from pydantic.alias_generators import to_camel

from definitions import queues
from definitions.durations import Duration
from definitions.secrets import SecretRef
from definitions.steptypes import StepTable, register_all


class _Args(BaseModel):
    model_config = ConfigDict(
        hide_input_in_errors=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )


class _Open(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True, extra="allow")


# --- core.echo -----------------------------------------------------------------------------------

class EchoArgs(_Args):
    values: dict[str, Any] = Field(default_factory=dict)
    #: Hold the activity this long (heartbeating), to make parallelism and cancellation visible.
    sleep: Duration | None = None


class EchoResult(_Open):
    """Whatever `values` held."""


# --- core.http -----------------------------------------------------------------------------------

class HttpArgs(_Args):
    url: HttpUrl
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    #: Header values read from secret references inside the activity (never in history).
    secret_headers: dict[str, SecretRef] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    expect_status: list[int] = Field(default_factory=lambda: list(range(200, 300)))
    request_timeout: Duration = Field(default=timedelta(seconds=30), alias="requestTimeout")
    ca_bundle: str | None = None
    insecure: bool = False
    #: Keep at most this many bytes of the response body in the step's outputs (history size).
    max_body_bytes: int = Field(default=65536, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _one_body(self) -> HttpArgs:
        if self.json_body is not None and self.body is not None:
            raise ValueError("give either json or body, not both")
        return self


class HttpResult(BaseModel):
    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""
    json_body: Any = Field(default=None, alias="json")
    truncated: bool = False

    model_config = ConfigDict(hide_input_in_errors=True, populate_by_name=True)


# --- core.wait -----------------------------------------------------------------------------------

class WaitArgs(_Args):
    duration: Duration | None = None
    until: datetime | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> WaitArgs:
        if (self.duration is None) == (self.until is None):
            raise ValueError("give exactly one of duration or until")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("until needs a time zone (e.g. 2026-11-21T18:00:00Z)")
        return self


class WaitResult(BaseModel):
    waited_until: datetime


# --- core.approval -------------------------------------------------------------------------------

class ApprovalArgs(_Args):
    message: str = "approve to continue"
    #: Who may approve; empty means anyone who can send updates to the workflow.
    approvers: list[str] = Field(default_factory=list)
    quorum: int = Field(default=1, ge=1, le=50)
    #: Who started the run; may not approve it (four-eyes rule) when set.
    requested_by: str | None = None

    @model_validator(mode="after")
    def _quorum_reachable(self) -> ApprovalArgs:
        if self.approvers and self.quorum > len(self.approvers):
            raise ValueError(f"quorum {self.quorum} exceeds the {len(self.approvers)} eligible approvers")
        return self


class ApprovalResult(BaseModel):
    approved: bool
    approvers: list[str]
    comments: list[str] = Field(default_factory=list)


# --- core.pipeline -------------------------------------------------------------------------------

class SubPipelineArgs(_Args):
    pipeline: str = Field(min_length=1)
    inputs: dict[str, Any] = Field(default_factory=dict)


CORE = StepTable(task_queue=queues.PIPELINE)

# One row a step type: the table reads as a table.
# fmt: off
STEP_TYPES = register_all([
    # A short heartbeat timeout: the SDK throttles heartbeats to 80% of it, which bounds how soon a
    # cancellation reaches a sleeping echo.
    CORE.activity("core.echo", EchoArgs, EchoResult, "return the given values (no-op)",
                  start_to_close=timedelta(hours=1), heartbeat_timeout=timedelta(seconds=5)),
    # Heartbeats while the request runs (keep_alive): a killed worker's call moves on within 10 s.
    CORE.activity("core.http", HttpArgs, HttpResult, "call an HTTP endpoint", start_to_close=timedelta(minutes=5),
                  heartbeat_timeout=timedelta(seconds=10)),
    CORE.builtin("core.wait", "wait", WaitArgs, WaitResult, "a durable timer"),
    CORE.builtin("core.approval", "approval", ApprovalArgs, ApprovalResult,
                 "wait for approval (Temporal update `approve`)"),
    CORE.builtin("core.pipeline", "PipelineWorkflow", SubPipelineArgs, None, "run another pipeline as a child"),
])
# fmt: on
