"""The generic route: start any pipeline of the library by name with validated inputs.

``POST /hooks/pipelines/{pipeline}`` with ``{"inputs": {...}}``. The event id comes from the
``Idempotency-Key`` header, else the body's ``eventId``, else a hash of pipeline name and inputs
(so an identical request is one run; send a key to run the same inputs again). Inputs are
validated exactly as `apeiro run` validates them (422 with every problem), an unknown pipeline is 404.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from definitions.triggers import Rule, Target
from triggers.events import Event, HookError
from triggers.sources.base import Source, parse_model, require_media_type


class PipelineTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    inputs: dict[str, Any] = Field(default_factory=dict)
    event_id: str | None = Field(default=None, alias="eventId", min_length=1, max_length=200)
    requested_by: str | None = Field(default=None, alias="requestedBy")


class PipelineSource(Source):
    name = "pipeline"
    summary = "Start any registered pipeline with validated inputs"
    description = __doc__ or ""
    payload_model = PipelineTrigger
    path_params = ("pipeline",)
    header_params = ("idempotency-key",)

    def default_path(self, route_name: str) -> str:
        return f"/hooks/{route_name}/{{pipeline}}"

    def default_rules(self) -> list[Rule]:
        return [Rule(name="run", target=Target(pipeline="${{ event.pipeline }}", inputs="${{ event.inputs }}"))]

    def parse(self, body: bytes, headers: Mapping[str, str], path_params: Mapping[str, str]) -> list[Event]:
        require_media_type(headers, self.content_types)
        name = path_params.get("pipeline", "")
        if not name:
            raise HookError(400, "no pipeline name in the path")
        trigger = parse_model(body if body.strip() else b"{}", PipelineTrigger, "pipeline trigger")
        key = headers.get("idempotency-key") or trigger.event_id
        if not key:
            canonical = json.dumps({"p": name, "i": trigger.inputs}, sort_keys=True, separators=(",", ":"))
            key = "h" + hashlib.sha256(canonical.encode()).hexdigest()[:24]
        return [
            Event(
                id=f"{name}-{key}",
                data={"pipeline": name, "inputs": trigger.inputs, "requested_by": trigger.requested_by or ""},
            )
        ]
