"""Notifications out: the ``core.notify`` step type and a pipeline's ``notify`` settings.

Targets are Slack and Microsoft Teams incoming webhooks and generic webhooks. Their URLs are
credentials (anyone holding a Slack webhook URL can post), so a target names them by secret
reference (``env:``, ``file:``, ``k8s:``), resolved in the activity, never in history. A generic
webhook's body is signed like the webhooks we receive (``X-Apeiro-Signature: t=<unix>,v1=<hex
HMAC-SHA256 of "<t>." + body>``, docs/operations.md section 5) when ``keyRef`` is given.

A pipeline's ``spec.notify`` sends, without any step in the DAG, when an approval starts waiting
(with a link to the console), when a step fails, and when the run ends.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from definitions import queues
from definitions.secrets import SecretRef
from definitions.steptypes import StepTable, register_all

Event = Literal["approval", "failed", "finished"]
EVENTS: tuple[Event, ...] = ("approval", "failed", "finished")


class _Strict(BaseModel):
    model_config = ConfigDict(
        hide_input_in_errors=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )


class NotifyTarget(_Strict):
    kind: Literal["slack", "teams", "webhook"]
    url_ref: SecretRef = Field(description="secret reference to the webhook URL (it is a credential)")
    key_ref: SecretRef | None = Field(default=None, description="webhook only: HMAC key to sign the body")
    events: list[Event] = Field(default_factory=lambda: list(EVENTS), description="spec.notify: which events")


class NotifySettings(_Strict):
    """``spec.notify`` of a pipeline."""

    console_url: str | None = Field(default=None, description="base URL of the console, for links to the run")
    targets: list[NotifyTarget] = Field(min_length=1)


class NotifyArgs(_Strict):
    targets: list[NotifyTarget] = Field(min_length=1)
    event: Literal["approval", "failed", "finished", "message"] = "message"
    title: str = Field(min_length=1, max_length=300)
    text: str = Field(default="", max_length=4000)
    link: str | None = None
    pipeline: str | None = None
    run: str | None = None
    step: str | None = None


class NotifyResult(BaseModel):
    sent: int
    failed: list[str] = Field(default_factory=list)


STEP_TYPES = register_all([
    StepTable(task_queue=queues.PIPELINE).activity(
        "core.notify",
        NotifyArgs,
        NotifyResult,
        "send a message to Slack, Microsoft Teams or a (signed) webhook",
        start_to_close=timedelta(minutes=1),
    )
])
