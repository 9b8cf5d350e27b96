"""Label and field selectors with the syntax kube-apiserver accepts."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from landscape.kubeapi.errors import ApiError

Matcher = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_./-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p for p in parts if p.strip()]


def _set_term(key: str, values: set[str], inside: bool) -> Matcher:
    def term(labels: dict[str, Any]) -> bool:
        return (labels.get(key) in values) == inside

    return term


def _eq_term(key: str, value: str, equal: bool) -> Matcher:
    def term(labels: dict[str, Any]) -> bool:
        return (key in labels and labels[key] == value) == equal

    return term


def _exists_term(key: str, negated: bool) -> Matcher:
    def term(labels: dict[str, Any]) -> bool:
        return (key in labels) != negated

    return term


def _field_term(path: str, value: str, equal: bool) -> Matcher:
    def term(obj: dict[str, Any]) -> bool:
        return ((_field_value(obj, path) or "") == value) == equal

    return term


def label_selector(selector: str | None) -> Matcher:
    if not selector:
        return lambda obj: True
    terms: list[Matcher] = []
    for raw in _split(selector):
        m = _SET_RE.match(raw)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            terms.append(_set_term(key, values, op == "in"))
            continue
        m = _EQ_RE.match(raw)
        if m:
            key, op, value = m.group(1), m.group(2), m.group(3)
            terms.append(_eq_term(key, value, op != "!="))
            continue
        m = _EXISTS_RE.match(raw)
        if m:
            neg, key = m.group(1) == "!", m.group(2)
            terms.append(_exists_term(key, neg))
            continue
        raise ApiError(400, f"unable to parse requirement: invalid label selector {raw.strip()!r}")

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(t(labels) for t in terms)

    return match


def _field_value(obj: dict[str, Any], path: str) -> str | None:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return None if cur is None else str(cur)


def field_selector(selector: str | None) -> Matcher:
    if not selector:
        return lambda obj: True
    terms: list[Matcher] = []
    for raw in _split(selector):
        m = _EQ_RE.match(raw)
        if not m:
            raise ApiError(400, f"invalid field selector {raw.strip()!r}: expected FIELD=VALUE or FIELD!=VALUE")
        path, op, value = m.group(1), m.group(2), m.group(3)
        terms.append(_field_term(path, value, op != "!="))
    return lambda obj: all(t(obj) for t in terms)
