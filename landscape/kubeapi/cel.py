"""``x-kubernetes-validations``: CEL rules on schema nodes, with ``oldSelf`` on update (cel-python).

As in apiextensions-apiserver (``pkg/apiserver/schema/cel``): a rule runs with ``self`` bound to the
value at its node; a rule that mentions ``oldSelf`` is a transition rule and runs only where the old
object has a correlatable value (same property path, same key of a map, same keys of a
``x-kubernetes-list-type: map`` list; items of other lists never correlate). A failing rule is one
cause at the node's path (or the rule's ``fieldPath``) with the rule's ``reason`` (FieldValueInvalid by
default) and ``message`` / ``messageExpression`` (default ``failed rule: <rule>``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import celpy

from landscape.kubeapi.schema import Cause, Schema, _join

_OLD_SELF = re.compile(r"\boldSelf\b")
_MISSING = object()


@lru_cache(maxsize=512)
def _program(expr: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(expr))


def _type(schema: Schema) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "integer,string"
    return str(schema.get("type") or "object")


def _evaluate(expr: str, activation: dict[str, Any]) -> Any:
    return _program(expr).evaluate({k: celpy.json_to_cel(v) for k, v in activation.items()})


def _cause(path: str, rule: dict[str, Any], schema: Schema, message: str) -> Cause:
    reason = rule.get("reason") or "FieldValueInvalid"
    field_path = rule.get("fieldPath") or ""
    where = (
        f"{path}{field_path}" if field_path.startswith(("[", ".")) else _join(path, field_path) if field_path else path
    )
    if reason == "FieldValueForbidden":
        return (where, reason, f"Forbidden: {message}")
    if reason == "FieldValueRequired":
        return (where, reason, f"Required value: {message}")
    if reason == "FieldValueDuplicate":
        return (where, reason, f'Duplicate value: "{_type(schema)}"')
    return (where, "FieldValueInvalid", f'Invalid value: "{_type(schema)}": {message}')


def _run_rules(value: Any, old: Any, schema: Schema, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for rule in schema.get("x-kubernetes-validations") or []:
        expr = rule.get("rule", "")
        transition = bool(_OLD_SELF.search(expr))
        if transition and old is _MISSING and not rule.get("optionalOldSelf"):
            continue
        activation = {"self": value}
        if transition:
            activation["oldSelf"] = None if old is _MISSING else old
        try:
            ok = _evaluate(expr, activation)
        except Exception as exc:  # a compile or runtime error of a rule fails the request, as upstream
            causes.append(
                (
                    path,
                    "FieldValueInvalid",
                    f'Invalid value: "{_type(schema)}": rule compile or evaluation error: {expr}: {exc}',
                )
            )
            continue
        if isinstance(ok, celpy.CELEvalError):
            causes.append((path, "FieldValueInvalid", f'Invalid value: "{_type(schema)}": {ok}'))
            continue
        if bool(ok):
            continue
        message = rule.get("message") or f"failed rule: {expr}"
        if rule.get("messageExpression"):
            try:
                message = str(_evaluate(rule["messageExpression"], activation)) or message
            except Exception:  # upstream falls back to message when messageExpression fails
                pass
        causes.append(_cause(path, rule, schema, message))
    return causes


def validate(value: Any, old: Any, schema: Schema, path: str = "") -> list[Cause]:
    """Every failing rule under ``schema``; ``old`` is the previous value or :data:`None` on create."""
    return _walk(value, _MISSING if old is None else old, schema, path)


def _walk(value: Any, old: Any, schema: Schema, path: str) -> list[Cause]:
    if value is None:
        return []
    causes = _run_rules(value, old, schema, path) if schema.get("x-kubernetes-validations") else []
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) or (additional if isinstance(additional, dict) else None)
            if sub is None:
                continue
            old_item = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
            causes += _walk(item, old_item, sub, _join(path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items: Schema = schema["items"]
        keys = schema.get("x-kubernetes-list-map-keys") or []
        old_by_key: dict[tuple[Any, ...], Any] = {}
        if schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list):
            old_by_key = {tuple(o.get(k) for k in keys): o for o in old if isinstance(o, dict)}
        for i, item in enumerate(value):
            old_item = (
                old_by_key.get(tuple(item.get(k) for k in keys), _MISSING)
                if old_by_key and isinstance(item, dict)
                else _MISSING
            )
            causes += _walk(item, old_item, items, f"{path}[{i}]")
    return causes


def has_rules(schema: Any) -> bool:
    """Whether any node carries rules (saves the walk for the many schemas without any)."""
    if isinstance(schema, dict):
        return "x-kubernetes-validations" in schema or any(has_rules(v) for v in schema.values())
    if isinstance(schema, list):
        return any(has_rules(v) for v in schema)
    return False
