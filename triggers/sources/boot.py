"""OS boot callbacks: a freshly imaged server (Garden Linux) reports that it booted.

The server provision workflow waits for this; the gateway signals it (signal name and workflow id
are configured per route, so the server lifecycle decides them). With ``start`` configured the
gateway uses signal-with-start: a callback that arrives before the workflow exists (or a workflow
that waits in a fresh run) is not lost. The event id is ``<server>-<boot_id>``; the signal argument
carries it, so the receiving workflow can ignore a redelivered callback.

Rules see ``server``, ``boot_id``, ``status`` (booted/failed), ``site``, ``os_image``,
``os_version``, ``ip``, ``mac``, ``message``, ``event_id``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from definitions.triggers import Rule, Target
from triggers.events import Event
from triggers.sources.base import Source, parse_model, require_media_type

DEFAULT_SIGNAL = "os_booted"
DEFAULT_WORKFLOW_ID = "server-provision-${{ event.server }}"


class BootCallback(BaseModel):
    """What the OS posts on first boot (cloud-init/ignition ``curl``)."""

    model_config = ConfigDict(extra="forbid")

    server: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    boot_id: str = Field(min_length=1, max_length=128, description="/proc/sys/kernel/random/boot_id")
    status: str = Field(default="booted", pattern="^(booted|failed)$")
    site: str = ""
    os_image: str = ""
    os_version: str = ""
    ip: str = ""
    mac: str = ""
    message: str = ""


class BootCallbackSource(Source):
    name = "boot-callback"
    summary = "OS boot callbacks: signal the waiting server provision workflow"
    description = __doc__ or ""
    payload_model = BootCallback

    def default_rules(self) -> list[Rule]:
        return [Rule(name="signal", target=Target(signal=DEFAULT_SIGNAL, workflow_id=DEFAULT_WORKFLOW_ID))]

    def parse(self, body: bytes, headers: Mapping[str, str], path_params: Mapping[str, str]) -> list[Event]:
        require_media_type(headers, self.content_types)
        cb = parse_model(body, BootCallback, "boot callback")
        event_id = f"{cb.server}-{cb.boot_id}"
        return [Event(id=event_id, data={**cb.model_dump(), "event_id": event_id})]
