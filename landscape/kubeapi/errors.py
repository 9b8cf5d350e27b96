"""API errors rendered as Kubernetes `Status` objects, so clients parse reason, code and details."""

from __future__ import annotations

from typing import Any

REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error the API answers with a Status body (what kube-apiserver does for every failure)."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details or {}
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _object(resource: str, name: str, group: str) -> tuple[str, dict[str, Any]]:
    """How kube-apiserver names an object in a message ("shoots.core.gardener.cloud"), and the details
    that identify it."""
    full = f"{resource}.{group}" if group else resource
    return full, {"name": name, "group": group, "kind": resource}


def not_found(resource: str, name: str, group: str) -> ApiError:
    full, details = _object(resource, name, group)
    return ApiError(404, f'{full} "{name}" not found', details=details)


def already_exists(resource: str, name: str, group: str) -> ApiError:
    full, details = _object(resource, name, group)
    return ApiError(409, f'{full} "{name}" already exists', reason="AlreadyExists", details=details)


def conflict(resource: str, name: str, group: str, why: str | None = None) -> ApiError:
    full, details = _object(resource, name, group)
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(409, f'Operation cannot be fulfilled on {full} "{name}": {why}', reason="Conflict", details=details)


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid. ``causes``: (field, reason e.g. FieldValueInvalid/FieldValueForbidden, message)."""
    full = f"{kind}.{group}" if group else kind
    text = "; ".join(f"{f}: {m}" if f else m for f, _, m in causes)
    return ApiError(
        422,
        f'{full} "{name}" is invalid: {text}',
        reason="Invalid",
        details={
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"field": f, "reason": r, "message": m} for f, r, m in causes],
        },
    )


def forbidden(resource: str, name: str, group: str, why: str) -> ApiError:
    full, details = _object(resource, name, group)
    return ApiError(403, f'{full} "{name}" is forbidden: {why}', reason="Forbidden", details=details)


def expired(message: str) -> ApiError:
    return ApiError(410, message, reason="Expired")
