"""CloudEvents 1.0 over HTTP, structured and binary content mode (CI/release events -> promotion).

- Structured: ``Content-Type: application/cloudevents+json``, the body is the whole event
  (``specversion``, ``id``, ``source``, ``type``, optional ``subject``, ``time``,
  ``datacontenttype``, ``data``/``data_base64``, extensions).
- Binary: attributes in ``ce-*`` headers (``ce-specversion: 1.0``, ``ce-id``, ``ce-source``,
  ``ce-type``...), the body is ``data`` with ``Content-Type`` its media type (JSON only here).
- Batched mode (``application/cloudevents-batch+json``) is refused with 415.

``source`` + ``id`` identify an event (CloudEvents 1.0, section 3.1.1), so the workflow id derives
from both. Rules see ``id``, ``source``, ``type``, ``subject``, ``time``, ``datacontenttype``,
``data`` and ``extensions`` (a map of the remaining attributes).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from triggers.events import Event, HookError
from triggers.sources.base import Source, media_type, parse_json, validation_details

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
JSON_TYPES = ("application/json",)
CORE = (
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
)
_EXT_NAME = re.compile(r"^[a-z0-9]{1,20}$")


class CloudEvent(BaseModel):
    """A CloudEvent 1.0 in structured JSON form (extension attributes allowed)."""

    model_config = ConfigDict(extra="allow")

    specversion: str = Field(pattern=r"^1\.0$", description="must be 1.0")
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = None
    data_base64: str | None = None


def _malformed(exc: ValidationError) -> HookError:
    details = validation_details(exc)
    first = details[0]
    return HookError(400, f"malformed CloudEvent: {first['path'] or 'event'}: {first['message']}", details=details)


def _to_event(ce: CloudEvent) -> Event:
    data = ce.data
    if ce.data_base64 is not None:
        try:
            raw = base64.b64decode(ce.data_base64, validate=True)
        except ValueError:
            raise HookError(400, "malformed CloudEvent: data_base64 is not base64") from None
        json_data = (ce.datacontenttype or "").endswith("json") and raw
        data = parse_json(raw, "data_base64") if json_data else raw.decode(errors="replace")
    extensions = {k: v for k, v in (ce.model_extra or {}).items() if k not in CORE}
    bad = [k for k in extensions if not _EXT_NAME.match(k)]
    if bad:
        raise HookError(
            400,
            f"malformed CloudEvent: attribute name(s) {', '.join(bad)} are not lower-case "
            "alphanumeric (at most 20 characters)",
        )
    return Event(
        id=f"{ce.source}#{ce.id}",
        data={
            "id": ce.id,
            "source": ce.source,
            "type": ce.type,
            "subject": ce.subject or "",
            "time": ce.time or "",
            "datacontenttype": ce.datacontenttype or "",
            "data": data,
            "extensions": extensions,
        },
    )


class CloudEventsSource(Source):
    name = "cloudevents"
    summary = "CloudEvents 1.0 (structured or binary HTTP mode): CI/release events"
    description = __doc__ or ""
    payload_model = CloudEvent
    content_types = (STRUCTURED, "application/json")
    header_params = ("ce-specversion", "ce-id", "ce-source", "ce-type")

    def parse(self, body: bytes, headers: Mapping[str, str], path_params: Mapping[str, str]) -> list[Event]:
        kind = media_type(headers)
        if kind == BATCH:
            raise HookError(
                415, f"batched CloudEvents are not accepted; send one event per request ({STRUCTURED} or binary mode)"
            )
        if "ce-specversion" in headers:
            return [self._binary(body, headers, kind)]
        if kind != STRUCTURED:
            raise HookError(
                415,
                f"content type {kind or '(none)'!r} without ce-* headers: send {STRUCTURED} "
                "(structured mode) or ce-specversion/ce-id/ce-source/ce-type headers (binary mode)",
            )
        raw = parse_json(body)
        if not isinstance(raw, dict):
            raise HookError(400, "malformed CloudEvent: a structured event is a JSON object")
        try:
            return [_to_event(CloudEvent.model_validate(raw))]
        except ValidationError as exc:
            raise _malformed(exc) from None

    def _binary(self, body: bytes, headers: Mapping[str, str], kind: str) -> Event:
        if kind and kind not in JSON_TYPES and not kind.endswith("+json"):
            raise HookError(415, f"binary-mode CloudEvent data of type {kind!r} is not accepted; send JSON data")
        attrs: dict[str, Any] = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
        if kind:
            attrs["datacontenttype"] = kind
        attrs["data"] = parse_json(body) if body.strip() else None
        try:
            return _to_event(CloudEvent.model_validate(attrs))
        except ValidationError as exc:
            raise _malformed(exc) from None
