"""The contract of a webhook source: a payload format and how it becomes events.

A source knows nothing about workflows: it checks the content type, parses and validates the body
into its pydantic model, and returns :class:`~triggers.events.Event` objects with stable ids. Rules
in the gateway configuration decide what each event starts. New lifecycles add a source by
subclassing :class:`Source` and calling :func:`triggers.sources.register_source`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from activities.bounded import RemoteDataError, loads_strict
from definitions.triggers import Rule
from definitions.validate import format_loc
from triggers.events import Event, HookError

M = TypeVar("M", bound=BaseModel)


def media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_media_type(headers: Mapping[str, str], accepted: tuple[str, ...]) -> str:
    kind = media_type(headers)
    if kind not in accepted:
        raise HookError(415, f"content type {kind or '(none)'!r} not accepted here; send one of: {', '.join(accepted)}")
    return kind


def parse_json(body: bytes, what: str = "body") -> Any:
    """Strict JSON (``activities.bounded.loads_strict``): nesting, int64, finite floats, valid text.

    Anything else is a 400 with the reason, never a 500 and never accepted to fail later.
    """
    try:
        return loads_strict(body, what)
    except RemoteDataError as exc:
        raise HookError(400, f"body is not acceptable JSON: {exc}") from None


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [{"path": format_loc(e["loc"]), "message": e["msg"]} for e in exc.errors()]


def parse_model(body: bytes | Any, model: type[M], what: str) -> M:
    data = parse_json(bytes(body)) if isinstance(body, bytes | bytearray) else body
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = validation_details(exc)
        first = details[0] if details else {"path": "", "message": "invalid"}
        raise HookError(
            422,
            f"not a valid {what}: {first['path'] or 'body'}: {first['message']}"
            + (f" (and {len(details) - 1} more)" if len(details) > 1 else ""),
            details=details,
        ) from None


class Source:
    """Base of every source. Subclasses set the class attributes and implement :meth:`parse`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    description: ClassVar[str] = ""
    payload_model: ClassVar[type[BaseModel] | None] = None
    content_types: ClassVar[tuple[str, ...]] = ("application/json",)
    #: Path parameters the route path must contain (``{pipeline}`` for the generic route).
    path_params: ClassVar[tuple[str, ...]] = ()
    #: Headers the source reads besides the body (documented in OpenAPI).
    header_params: ClassVar[tuple[str, ...]] = ()

    def default_rules(self) -> list[Rule]:
        """Rules used when a route declares none."""
        return []

    def default_path(self, route_name: str) -> str:
        return f"/hooks/{route_name}"

    def parse(self, body: bytes, headers: Mapping[str, str], path_params: Mapping[str, str]) -> list[Event]:
        raise NotImplementedError
