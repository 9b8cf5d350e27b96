"""Pydantic JSON Schema -> Kubernetes structural schema (what an APIResourceSchema or a CRD may hold).

A structural schema (Kubernetes API conventions, "Specifying a structural schema") has a `type` on
every node, no `$ref`, no `additionalProperties: false`, and `anyOf`/`oneOf` only as validation
beside a typed node. Pydantic emits `$defs`/`$ref`, `anyOf: [X, null]` for optionals, `const`,
`title`s and free `Any` nodes; this module rewrites each into its structural equivalent so the
schema is generated from the same models that validate a workflow's input, never written by hand.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

#: Formats the Kubernetes API server knows; any other format is dropped (it would only warn).
KUBE_FORMATS = frozenset(
    {"date-time", "date", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "byte", "int32", "int64"}
)
#: Keywords kept as they are (validation that applies to the node's own type).
_KEPT = (
    "description",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


def structural(model: type[BaseModel], *, description: str | None = None) -> dict[str, Any]:
    """The structural schema of `model`, as its JSON (by alias) is written into a Kubernetes object."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    out = _convert(raw, raw.get("$defs", {}), ())
    if description is not None:
        out["description"] = description
    return out


def _convert(node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:  # a recursive model: its inner levels stay free-form
            return {"type": "object", _PRESERVE: True}
        merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs, (*seen, name))
    for key in ("anyOf", "oneOf"):
        if key in node:
            return _union(node, node[key], defs, seen)
    if "allOf" in node and len(node["allOf"]) == 1:
        merged = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
        return _convert(merged, defs, seen)
    out: dict[str, Any] = {k: node[k] for k in _KEPT if k in node}
    if "const" in node:
        out["enum"] = [node["const"]]
        node = {**node, "type": node.get("type") or _type_of(node["const"])}
    kind = node.get("type")
    if isinstance(kind, list):  # ["string", "null"]
        kinds = [k for k in kind if k != "null"]
        if "null" in kind:
            out["nullable"] = True
        kind = kinds[0] if len(kinds) == 1 else None
    if kind is None:
        out.pop("enum", None)
        return {**out, _PRESERVE: True}
    out["type"] = kind
    fmt = node.get("format")
    if fmt in KUBE_FORMATS:
        out["format"] = fmt
    if kind == "object":
        _object(node, out, defs, seen)
    elif kind == "array":
        items = node.get("items")
        out["items"] = _convert(items, defs, seen) if isinstance(items, dict) else {"type": "object", _PRESERVE: True}
    return out


def _object(node: dict[str, Any], out: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...]) -> None:
    props = node.get("properties")
    extra = node.get("additionalProperties")
    if props:
        out["properties"] = {name: _convert(sub, defs, seen) for name, sub in props.items()}
        if node.get("required"):
            out["required"] = list(node["required"])
        if extra not in (None, False):  # extra="allow": keep what the model does not name
            out[_PRESERVE] = True
    elif isinstance(extra, dict) and extra:
        out["additionalProperties"] = _convert(extra, defs, seen)
    else:  # dict[str, Any] or a free object
        out[_PRESERVE] = True


def _union(
    node: dict[str, Any], options: list[dict[str, Any]], defs: dict[str, Any], seen: tuple[str, ...]
) -> dict[str, Any]:
    """`X | None` becomes X with `nullable`; a real union of types becomes a free-form node."""
    rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
    real = [o for o in options if o.get("type") != "null"]
    nullable = len(real) < len(options)
    if len(real) == 1:
        out = _convert({**real[0], **{k: v for k, v in rest.items() if k in _KEPT}}, defs, seen)
    else:
        kinds = {o.get("type") for o in real}
        out = {k: rest[k] for k in ("description",) if k in rest}
        if kinds == {"integer", "string"}:
            out["x-kubernetes-int-or-string"] = True
        elif len(kinds) == 1 and None not in kinds and kinds != {"object"} and kinds != {"array"}:
            out["type"] = kinds.pop()
        else:
            out[_PRESERVE] = True
    if nullable:
        out["nullable"] = True
    return out


def _type_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def problems(schema: dict[str, Any], path: str = "") -> list[str]:
    """Why `schema` is not structural (empty when it is): the checks the API server applies."""
    found: list[str] = []
    if "$ref" in schema:
        found.append(f"{path or '.'}: $ref")
    free = schema.get(_PRESERVE) or schema.get("x-kubernetes-int-or-string")
    if "type" not in schema and not free:
        found.append(f"{path or '.'}: no type")
    if schema.get("additionalProperties") is False:
        found.append(f"{path or '.'}: additionalProperties false")
    if "properties" in schema and "additionalProperties" in schema:
        found.append(f"{path or '.'}: properties and additionalProperties")
    for name, sub in schema.get("properties", {}).items():
        found += problems(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        found += problems(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += problems(schema["additionalProperties"], f"{path}.*")
    return found
