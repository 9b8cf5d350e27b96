"""Fault injection: error answers on chosen requests, and watches cut mid-stream.

Controlled through the admin endpoints (`/admin/faults`, `/admin/watches/...`) or, in-process, by
calling these methods directly. Faults are counted: each rule answers ``count`` matching requests,
then disappears, which is how "503 for a while" or "409 on the next patch" is expressed.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

from landscape.kubeapi.errors import ApiError

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
ALL_VERBS = WRITE_VERBS | {"get", "list", "watch"}

_MESSAGES = {
    409: "the object has been modified; please apply your changes to the latest version and try again",
    429: "the server has received too many requests and has asked us to try again later",
    500: 'an error on the server ("injected fault") has prevented the request from succeeding',
    503: "the server is currently unable to handle the request",
}


@dataclass
class FaultRule:
    id: int
    code: int
    count: int
    verbs: frozenset[str] = WRITE_VERBS
    resource: str | None = None  # plural, e.g. "shoots"
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    retry_after: int = 1
    hits: int = 0

    def matches(self, verb: str, resource: str, namespace: str | None, name: str | None, subresource: str) -> bool:
        return (
            verb in self.verbs
            and (self.resource is None or self.resource == resource)
            and (self.namespace is None or self.namespace == namespace)
            and (self.name is None or self.name == name)
            and (self.subresource is None or self.subresource == subresource)
        )

    def error(self, resource: str, name: str | None) -> ApiError:
        details: dict[str, Any] = {"name": name or "", "kind": resource}
        if self.code == 409:
            return ApiError(
                409,
                f'Operation cannot be fulfilled on {resource} "{name}": {_MESSAGES[409]}',
                reason="Conflict",
                details=details,
            )
        if self.code == 429:
            details["retryAfterSeconds"] = self.retry_after
            return ApiError(429, _MESSAGES[429], details=details, retry_after=self.retry_after)
        if self.code == 503:
            details["retryAfterSeconds"] = self.retry_after
            return ApiError(503, _MESSAGES[503], details=details, retry_after=self.retry_after)
        return ApiError(self.code, _MESSAGES.get(self.code, "injected fault"), details=details)


@dataclass(frozen=True)
class FaultSpec:
    """A fault to inject: answer the next ``count`` requests that match with ``code`` (409/429/503...).

    ``verbs`` default to the write verbs (``write`` names them, ``*`` means all); ``None`` elsewhere
    matches anything. The body of ``POST /admin/faults`` (:meth:`to_json`, ``retryAfter`` camel-cased).
    """

    code: int
    count: int = 1
    verbs: list[str] | None = None
    resource: str | None = None  # plural, e.g. "shoots"
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    retry_after: int = 1

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["retryAfter"] = body.pop("retry_after")
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FaultSpec:
        """Raises TypeError for an unknown or missing field."""
        fields = dict(body)
        if "retryAfter" in fields:
            fields["retry_after"] = fields.pop("retryAfter")
        return cls(**fields)


@dataclass
class WatchCut:
    """Cut the next ``watches`` watch streams (of ``resource``) after they delivered ``after_events``."""

    after_events: int
    watches: int = 1
    resource: str | None = None
    mode: str = "reset"


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    watch_cuts: list[WatchCut] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, spec: FaultSpec) -> FaultRule:
        chosen = frozenset(spec.verbs) if spec.verbs else WRITE_VERBS
        if "write" in chosen:
            chosen = (chosen - {"write"}) | WRITE_VERBS
        if "*" in chosen or "all" in chosen:
            chosen = ALL_VERBS
        unknown = chosen - ALL_VERBS
        if unknown:
            raise ValueError(f"unknown verbs {sorted(unknown)}; use {sorted(ALL_VERBS)}, 'write' or '*'")
        rule = FaultRule(
            next(self._ids),
            int(spec.code),
            int(spec.count),
            chosen,
            spec.resource,
            spec.namespace,
            spec.name,
            spec.subresource,
            int(spec.retry_after),
        )
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()
        self.watch_cuts.clear()

    def check(
        self, verb: str, resource: str, namespace: str | None, name: str | None, subresource: str = ""
    ) -> ApiError | None:
        for rule in self.rules:
            if rule.matches(verb, resource, namespace, name, subresource):
                rule.hits += 1
                rule.count -= 1
                if rule.count <= 0:
                    self.rules.remove(rule)
                return rule.error(resource, name)
        return None

    def take_watch_cut(self, resource: str) -> WatchCut | None:
        for cut in self.watch_cuts:
            if cut.resource in (None, resource):
                cut.watches -= 1
                if cut.watches <= 0:
                    self.watch_cuts.remove(cut)
                return cut
        return None
