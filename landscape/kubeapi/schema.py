"""Structural schemas as kube-apiserver applies them to custom resources: prune, default, validate.

Order and wording follow apiextensions-apiserver (``pkg/apiserver/schema/pruning``, ``.../defaulting``,
``pkg/apiserver/validation``): unknown fields are dropped unless ``x-kubernetes-preserve-unknown-fields``;
``null`` in a non-nullable field is dropped before defaulting; defaults fill absent properties; then the
OpenAPI checks run and each failure becomes one cause with kube's reason and message (``Required value``,
``Unsupported value``, ``Invalid value: "integer": spec.x in body must be of type string``...).
CEL rules (``x-kubernetes-validations``) live in :mod:`landscape.kubeapi.cel`.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

Cause = tuple[str, str, str]  # (field, reason, message)
Schema = dict[str, Any]

ROOT_KEEP = ("apiVersion", "kind", "metadata")
#: ObjectMeta fields a client may send; anything else in metadata is pruned like an unknown field.
OBJECT_META = {
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _shown(value: Any) -> str:
    """How kube's field errors print a value: strings quoted, the rest as Go would print them."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return f'"{_type_name(value)}"'
    if value is None:
        return '"null"'
    return str(value)


# --- pruning --------------------------------------------------------------------------------------


def prune(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Drop what the schema does not know, in place; returns the dropped paths (for warnings)."""
    dropped: list[str] = []
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in [k for k in meta if k not in OBJECT_META]:
            meta.pop(key)
            dropped.append(f"metadata.{key}")
    _prune(obj, schema, "", dropped, root=True)
    return dropped


def _prune(value: Any, schema: Schema, path: str, dropped: list[str], root: bool = False) -> None:
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        for key in list(value):
            if (root or embedded) and key in ROOT_KEEP:
                continue  # ObjectMeta is pruned by its own rules (see prune), never by the CRD schema
            if key in props:
                _prune(value[key], props[key], _join(path, key), dropped)
            elif isinstance(additional, dict):
                _prune(value[key], additional, _join(path, key), dropped)
            elif preserve or additional is True:
                continue
            else:
                value.pop(key)
                dropped.append(_join(path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _prune(item, schema["items"], f"{path}[{i}]", dropped)


# --- defaulting -----------------------------------------------------------------------------------


def default(value: Any, schema: Schema) -> None:
    """Drop nulls the schema does not allow, then fill defaults of absent properties, in place."""
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        for key, sub in props.items():
            if key in value and value[key] is None and not sub.get("nullable"):
                del value[key]
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                default(value[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in [k for k in value if k not in props]:
                if value[key] is None and not additional.get("nullable"):
                    del value[key]
                else:
                    default(value[key], additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            default(item, schema["items"])


# --- validation -----------------------------------------------------------------------------------

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LABEL = r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_DURATION = re.compile(r"^((\d+(\.\d+)?)\s*(ns|us|µs|ms|s|m|h|d|w))+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _date_time(s: str) -> bool:
    if not _DATE_TIME.match(s):
        return False
    try:
        datetime.fromisoformat(s.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    except ValueError:
        return False
    return True


def _ok(check: Any, s: str) -> bool:
    try:
        check(s)
    except ValueError:
        return False
    return True


def _ip(version: int) -> Any:
    def check(s: str) -> bool:
        return _ok(ipaddress.ip_address, s) and ipaddress.ip_address(s).version == version

    return check


#: The string formats kube-apiserver checks on custom resources (go-openapi strfmt defaults); other
#: formats (int32, int64, double...) are documentation only.
FORMATS: dict[str, Any] = {
    "date-time": _date_time,
    "datetime": _date_time,
    "date": lambda s: bool(_DATE.match(s)) and _ok(lambda v: datetime.strptime(v, "%Y-%m-%d"), s),
    "byte": lambda s: _ok(lambda v: base64.b64decode(v, validate=True), s),
    "uuid": lambda s: _ok(uuid.UUID, s) and len(s) == 36,
    "ipv4": _ip(4),
    "ipv6": _ip(6),
    "cidr": lambda s: "/" in s and _ok(lambda v: ipaddress.ip_network(v, strict=False), s),
    "mac": lambda s: bool(_MAC.match(s)),
    "hostname": lambda s: bool(_HOSTNAME.match(s)),
    "email": lambda s: bool(_EMAIL.match(s)),
    "duration": lambda s: bool(_DURATION.match(s)),
}


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _type_ok(value: Any, want: str) -> bool:
    if want == "string":
        return isinstance(value, str)
    if want == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if want == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if want == "boolean":
        return isinstance(value, bool)
    if want == "array":
        return isinstance(value, list)
    if want == "object":
        return isinstance(value, dict)
    return True


def normalise_numbers(value: Any) -> Any:
    """Whole floats become ints, as apimachinery's JSON decoding of unstructured objects does."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: normalise_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise_numbers(v) for v in value]
    return value


def validate(value: Any, schema: Schema, path: str) -> list[Cause]:
    """The OpenAPI checks of one value against its schema node, recursively."""
    return list(_validate(value, schema, path))


def _validate(value: Any, s: Schema, path: str) -> Iterator[Cause]:
    where = path or "<root>"
    if value is None:
        if s.get("nullable"):
            return
        if s.get("type"):
            yield (
                path,
                "FieldValueTypeInvalid",
                f'Invalid value: "null": {where} in body must be of type {s["type"]}: "null"',
            )
        return
    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    want = s.get("type")
    if int_or_string:
        if not (isinstance(value, str) or _type_ok(value, "integer")):
            yield (
                path,
                "FieldValueTypeInvalid",
                f"Invalid value: {_shown(value)}: {where} in body must be of type integer,string: "
                f'"{_type_name(value)}"',
            )
            return
    elif want and not _type_ok(value, want):
        yield (
            path,
            "FieldValueTypeInvalid",
            f'Invalid value: "{_type_name(value)}": {where} in body must be of type {want}: "{_type_name(value)}"',
        )
        return
    if "enum" in s and value not in s["enum"]:
        allowed = ", ".join(json.dumps(v) for v in s["enum"])
        yield (path, "FieldValueNotSupported", f"Unsupported value: {_shown(value)}: supported values: {allowed}")
    if isinstance(value, str):
        yield from _string(value, s, path, where)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield from _number(value, s, path, where)
    elif isinstance(value, list):
        yield from _array(value, s, path, where)
    elif isinstance(value, dict):
        yield from _object(value, s, path, where)
    for key in ("allOf", "anyOf", "oneOf", "not"):
        if key in s:
            yield from _combinators(key, value, s[key], path, where)


def _string(value: str, s: Schema, path: str, where: str) -> Iterator[Cause]:
    n = len(value)
    if "maxLength" in s and n > s["maxLength"]:
        yield (path, "FieldValueTooLong", f"Too long: may not be more than {s['maxLength']} bytes")
    if "minLength" in s and n < s["minLength"]:
        yield (
            path,
            "FieldValueInvalid",
            f"Invalid value: {_shown(value)}: {where} in body should be at least {s['minLength']} chars long",
        )
    if "pattern" in s and not _regex(s["pattern"]).search(value):
        yield (
            path,
            "FieldValueInvalid",
            f"Invalid value: {_shown(value)}: {where} in body should match '{s['pattern']}'",
        )
    fmt = s.get("format")
    check = FORMATS.get(fmt or "")
    if check is not None and not check(value):
        yield (
            path,
            "FieldValueInvalid",
            f"Invalid value: {_shown(value)}: {where} in body must be of type {fmt}: {json.dumps(value)}",
        )


def _number(value: float, s: Schema, path: str, where: str) -> Iterator[Cause]:
    if "maximum" in s:
        if s.get("exclusiveMaximum") and value >= s["maximum"]:
            yield (
                path,
                "FieldValueInvalid",
                f"Invalid value: {_shown(value)}: {where} in body should be less than {s['maximum']}",
            )
        elif value > s["maximum"]:
            yield (
                path,
                "FieldValueInvalid",
                f"Invalid value: {_shown(value)}: {where} in body should be less than or equal to {s['maximum']}",
            )
    if "minimum" in s:
        if s.get("exclusiveMinimum") and value <= s["minimum"]:
            yield (
                path,
                "FieldValueInvalid",
                f"Invalid value: {_shown(value)}: {where} in body should be greater than {s['minimum']}",
            )
        elif value < s["minimum"]:
            yield (
                path,
                "FieldValueInvalid",
                f"Invalid value: {_shown(value)}: {where} in body should be greater than or equal to {s['minimum']}",
            )
    if s.get("multipleOf") and value % s["multipleOf"] != 0:
        yield (
            path,
            "FieldValueInvalid",
            f"Invalid value: {_shown(value)}: {where} in body should be a multiple of {s['multipleOf']}",
        )


def _array(value: list[Any], s: Schema, path: str, where: str) -> Iterator[Cause]:
    if "maxItems" in s and len(value) > s["maxItems"]:
        yield (path, "FieldValueTooMany", f"Too many: {len(value)}: must have at most {s['maxItems']} items")
    if "minItems" in s and len(value) < s["minItems"]:
        yield (
            path,
            "FieldValueInvalid",
            f"Invalid value: {len(value)}: {where} in body should have at least {s['minItems']} items",
        )
    items = s.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            yield from _validate(item, items, f"{path}[{i}]")
    list_type = s.get("x-kubernetes-list-type")
    if list_type == "set":
        seen: list[Any] = []
        for i, item in enumerate(value):
            if item in seen:
                yield (f"{path}[{i}]", "FieldValueDuplicate", f"Duplicate value: {_shown(item)}")
            seen.append(item)
    elif list_type == "map":
        keys = s.get("x-kubernetes-list-map-keys") or []
        seen_keys: list[tuple[Any, ...]] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            k = tuple(item.get(x) for x in keys)
            if k in seen_keys:
                shown = ", ".join(f"{x}: {_shown(item.get(x))}" for x in keys)
                yield (f"{path}[{i}]", "FieldValueDuplicate", f"Duplicate value: map[string]interface {{}}{{{shown}}}")
            seen_keys.append(k)


def _object(value: dict[str, Any], s: Schema, path: str, where: str) -> Iterator[Cause]:
    for key in s.get("required") or []:
        if key not in value:
            yield (_join(path, key), "FieldValueRequired", "Required value")
    if "maxProperties" in s and len(value) > s["maxProperties"]:
        yield (path, "FieldValueTooMany", f"Too many: {len(value)}: must have at most {s['maxProperties']} items")
    if "minProperties" in s and len(value) < s["minProperties"]:
        yield (
            path,
            "FieldValueInvalid",
            f"Invalid value: {len(value)}: {where} in body should have at least {s['minProperties']} properties",
        )
    props: dict[str, Schema] = s.get("properties") or {}
    additional = s.get("additionalProperties")
    for key, item in value.items():
        if key in props:
            yield from _validate(item, props[key], _join(path, key))
        elif isinstance(additional, dict):
            yield from _validate(item, additional, _join(path, key))


def _combinators(key: str, value: Any, subs: Any, path: str, where: str) -> Iterator[Cause]:
    if key == "not":
        if not validate(value, subs, path):
            yield (
                path,
                "FieldValueInvalid",
                f"Invalid value: {_shown(value)}: {where} in body must not validate the schema (not)",
            )
        return
    results = [validate(value, sub, path) for sub in subs]
    if key == "allOf":
        for r in results:
            yield from r
    elif key == "anyOf" and all(results):
        yield (
            path,
            "FieldValueInvalid",
            f"Invalid value: {_shown(value)}: {where} in body must validate at least one schema (anyOf)",
        )
        for r in results:
            yield from r
    elif key == "oneOf" and sum(1 for r in results if not r) != 1:
        yield (
            path,
            "FieldValueInvalid",
            f"Invalid value: {_shown(value)}: {where} in body must validate one and only one schema (oneOf)",
        )
