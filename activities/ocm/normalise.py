"""Component-descriptor normalisation, byte-compatible with OCM.

A signature covers the SHA-256 of the *normalised* descriptor, so every byte here must match what
OCM's Go code produces, or signatures written by one tool fail in the other. OCM's pipeline is:

1. decode the descriptor into a Go struct and marshal it back to JSON. Unknown fields vanish,
   ``omitempty`` fields that are empty vanish, the others are always present. :func:`_project`
   reproduces that projection from the raw YAML/JSON mapping.
2. (v1, v2 only) the *legacy defaulting*: a resource whose name and extra identity clash with a later
   one gets ``extraIdentity.version`` set to its version (the last of the clashing ones stays as is).
3. apply exclusion rules (drop ``meta``, ``signatures``, ``nestedDigests``, ``repositoryContexts``,
   every ``access``, ``srcRefs``, the digest of resources with access type ``none``; keep only labels
   with ``signing: true``, reduced to name/version/value/signing).
4. serialise: ``jsonNormalisation/v1`` writes the legacy *entry* form (every map becomes a list of
   one-key maps sorted by key, Go's HTML-escaping JSON encoder, ``extraIdentity: null`` enforced for
   resources and references, sources dropped, ``meta`` kept); ``v2``, ``v3`` and ``v4alpha1`` write
   RFC 8785 canonical JSON of the internal model (v3 == v4alpha1; v2 adds step 2).

OCM's component-reference label rule is keyed ``references`` while the field is
``componentReferences``, so reference labels are *not* filtered in v2/v3. We reproduce that, since
changing it would break every signature OCM wrote.

``jsonNormalisation/v1`` changed over time: old OCM releases did not enforce ``extraIdentity: null``.
:data:`LEGACY_FORMS` lists such earlier forms so verification can recognise (and name) them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import rfc8785
import yaml

from activities.ocm.errors import InvalidDescriptor, UnknownNormalisation
from definitions.ocm import ACCESS_NONE, ComponentDescriptor
from definitions.yamlfiles import YamlProblem, parse_yaml

JSON_V1 = "jsonNormalisation/v1"
JSON_V2 = "jsonNormalisation/v2"
JSON_V3 = "jsonNormalisation/v3"
JSON_V4ALPHA1 = "jsonNormalisation/v4alpha1"
ALGORITHMS = (JSON_V1, JSON_V2, JSON_V3, JSON_V4ALPHA1)
DEFAULT_ALGORITHM = JSON_V4ALPHA1


@dataclass(frozen=True)
class LegacyForm:
    """An earlier byte form of a normalisation that old OCM releases produced under the same name."""

    algorithm: str
    name: str
    description: str


LEGACY_V1_NO_NULL_EXTRA_IDENTITY = LegacyForm(
    algorithm=JSON_V1,
    name="jsonNormalisation/v1 (legacy form without extraIdentity:null)",
    description="the jsonNormalisation/v1 form of early OCM releases, which omitted an empty "
    'extraIdentity instead of writing {"extraIdentity":null}',
)

LEGACY_FORMS: dict[str, tuple[LegacyForm, ...]] = {JSON_V1: (LEGACY_V1_NO_NULL_EXTRA_IDENTITY,)}


# --- loading ---------------------------------------------------------------------------------------


def load_descriptor_data(text: str | bytes) -> dict[str, Any]:
    """Parse a descriptor (YAML or JSON) into a plain mapping, as it is on disk."""
    from activities.bounded import MAX_JSON_DEPTH, MAX_MANIFEST_BYTES, RemoteDataError, check_depth_and_strings

    if len(text) > MAX_MANIFEST_BYTES:
        raise InvalidDescriptor(f"component descriptor is larger than {MAX_MANIFEST_BYTES} bytes")
    try:  # the hardened loader: a descriptor may come from any registry
        data = parse_yaml(text, timestamps_as_text=True)
        check_depth_and_strings(data, "component descriptor", MAX_JSON_DEPTH)
    except YamlProblem as exc:
        raise InvalidDescriptor(f"component descriptor is not valid YAML/JSON: {exc}") from None
    except RecursionError:
        raise InvalidDescriptor(f"component descriptor is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except RemoteDataError as exc:
        raise InvalidDescriptor(str(exc)) from None
    if not isinstance(data, dict) or not isinstance(data.get("component"), dict):
        raise InvalidDescriptor("component descriptor has no 'component' section; is this an OCM descriptor?")
    schema = (data.get("meta") or {}).get("schemaVersion")
    if schema not in (None, "v2"):
        raise InvalidDescriptor(f"component descriptor schema {schema!r} is not supported (only meta.schemaVersion v2)")
    return data


def load_descriptor(text: str | bytes) -> ComponentDescriptor:
    return ComponentDescriptor.model_validate(load_descriptor_data(text))


def dump_descriptor(data: Mapping[str, Any] | ComponentDescriptor) -> str:
    raw = data.to_dict() if isinstance(data, ComponentDescriptor) else dict(data)
    # libyaml's emitter when PyYAML has it: the same text as the pure Python one, several times faster.
    return yaml.dump(raw, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True)


# --- step 1: the Go-struct projection -------------------------------------------------------------


def _nonempty(value: Any) -> bool:
    return value not in (None, "", [], {}, False)


def _label(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": raw.get("name", ""), "value": raw.get("value")}
    if _nonempty(raw.get("version")):
        out["version"] = raw["version"]
    if raw.get("signing") in (True, "true"):
        out["signing"] = True
    if raw.get("merge") is not None:
        merge = raw["merge"]
        out["merge"] = (
            {k: merge[k] for k in ("algorithm", "config") if k in merge} if isinstance(merge, Mapping) else merge
        )
    return out


def _labels(raw: Any) -> list[dict[str, Any]] | None:
    if not raw:
        return None
    return [_label(lbl) for lbl in raw]


def _element(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": raw.get("name", ""), "version": raw.get("version", "") or ""}
    if raw.get("extraIdentity"):
        out["extraIdentity"] = dict(raw["extraIdentity"])
    labels = _labels(raw.get("labels"))
    if labels:
        out["labels"] = labels
    return out


def _digest(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    return {k: raw.get(k, "") for k in ("hashAlgorithm", "normalisationAlgorithm", "value")}


def _resource(raw: Mapping[str, Any]) -> dict[str, Any]:
    out = _element(raw)
    out["type"] = raw.get("type", "")
    if raw.get("relation"):
        out["relation"] = raw["relation"]
    if raw.get("srcRefs"):
        out["srcRefs"] = raw["srcRefs"]
    digest = _digest(raw.get("digest"))
    if digest is not None:
        out["digest"] = digest
    out["access"] = raw.get("access")
    return out


def _source(raw: Mapping[str, Any]) -> dict[str, Any]:
    out = _element(raw)
    out["type"] = raw.get("type", "")
    out["access"] = raw.get("access")
    return out


def _reference(raw: Mapping[str, Any]) -> dict[str, Any]:
    out = _element(raw)
    out["componentName"] = raw.get("componentName", "")
    digest = _digest(raw.get("digest"))
    if digest is not None:
        out["digest"] = digest
    return out


def _provider(raw: Any) -> dict[str, Any]:
    """The internal model's provider: v2 writes a string that may itself hold JSON {name, labels}."""
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        raw = parsed if isinstance(parsed, dict) else {"name": raw}
    if not isinstance(raw, Mapping):
        raw = {"name": "" if raw is None else str(raw)}
    out: dict[str, Any] = {"name": raw.get("name", "")}
    labels = _labels(raw.get("labels"))
    if labels:
        out["labels"] = labels
    return out


def _project(data: Mapping[str, Any]) -> dict[str, Any]:
    """The internal model as OCM marshals it (only the parts any normalisation can keep)."""
    comp = data.get("component") or {}
    out: dict[str, Any] = {"name": comp.get("name", ""), "version": comp.get("version", "")}
    labels = _labels(comp.get("labels"))
    if labels:
        out["labels"] = labels
    out["provider"] = _provider(comp.get("provider", ""))
    if comp.get("creationTime") is not None:
        ct = comp["creationTime"]
        out["creationTime"] = ct if isinstance(ct, str) else ct.isoformat().replace("+00:00", "Z")
    out["sources"] = [_source(s) for s in comp.get("sources") or []]
    out["componentReferences"] = [_reference(r) for r in comp.get("componentReferences") or []]
    out["resources"] = [_resource(r) for r in comp.get("resources") or []]
    return {"meta": {"schemaVersion": (data.get("meta") or {}).get("schemaVersion", "v2")}, "component": out}


# --- step 2: legacy extra-identity defaulting -----------------------------------------------------


def _legacy_identity_defaulting(resources: list[dict[str, Any]]) -> None:
    for i, res in enumerate(resources):
        for j, other in enumerate(resources):
            if i == j or other["name"] != res["name"]:
                continue
            if (other.get("extraIdentity") or {}) != (res.get("extraIdentity") or {}):
                continue
            eid = dict(res.get("extraIdentity") or {})
            eid["version"] = res["version"]
            res["extraIdentity"] = eid
            break


# --- step 3: exclusion rules ----------------------------------------------------------------------


def _signing_labels(labels: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    kept: list[dict[str, Any]] = [
        {k: lbl[k] for k in ("name", "version", "value", "signing") if k in lbl}
        for lbl in labels or []
        if lbl.get("signing") is True
    ]
    return kept or None


def _put_labels(target: dict[str, Any], labels: list[dict[str, Any]] | None) -> None:
    filtered = _signing_labels(labels)
    if filtered:
        target["labels"] = filtered
    else:
        target.pop("labels", None)


def _resource_for_signing(res: dict[str, Any]) -> dict[str, Any]:
    access = res.get("access")
    out = {k: v for k, v in res.items() if k not in ("access", "srcRefs")}
    if isinstance(access, Mapping) and access.get("type") in ACCESS_NONE:
        out.pop("digest", None)
    _put_labels(out, res.get("labels"))
    return out


def _component_for_v2(comp: dict[str, Any]) -> dict[str, Any]:
    out = dict(comp)
    _put_labels(out, comp.get("labels"))
    provider = dict(comp["provider"])
    _put_labels(provider, provider.get("labels"))
    out["provider"] = provider
    out["resources"] = [_resource_for_signing(r) for r in comp["resources"]]
    sources = []
    for src in comp["sources"]:
        s = {k: v for k, v in src.items() if k != "access"}
        _put_labels(s, src.get("labels"))
        sources.append(s)
    out["sources"] = sources
    # componentReferences: kept as marshalled (OCM's rule for them is keyed "references").
    return out


_NULL = object()  # placeholder for an enforced JSON null in the entry form


def _component_for_v1(comp: dict[str, Any], *, enforce_null: bool) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in comp.items() if k != "sources"}
    _put_labels(out, comp.get("labels"))
    provider = dict(comp["provider"])
    if provider.get("labels"):
        _put_labels(provider, provider.get("labels"))
        out["provider"] = provider
    else:
        out["provider"] = provider["name"]
    resources = []
    for res in comp["resources"]:
        r = _resource_for_signing(res)
        if enforce_null and not r.get("extraIdentity"):
            r["extraIdentity"] = _NULL
        resources.append(r)
    out["resources"] = resources
    refs = []
    for ref in comp["componentReferences"]:
        r = dict(ref)
        _put_labels(r, ref.get("labels"))
        if enforce_null and not r.get("extraIdentity"):
            r["extraIdentity"] = _NULL
        refs.append(r)
    out["componentReferences"] = refs
    return out


# --- step 4: serialisation ------------------------------------------------------------------------

_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _go_string(s: str) -> str:
    """A string as Go's encoding/json writes it with HTML escaping on (json.Marshal)."""
    parts = ['"']
    for ch in s:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            parts.append(esc)
        elif ord(ch) < 0x20:
            parts.append(f"\\u{ord(ch):04x}")
        else:
            parts.append(ch)
    parts.append('"')
    return "".join(parts)


def _go_number(n: float | int) -> str:
    """A number as Go writes a float64 (label values pass through float64 in OCM)."""
    f = float(n)
    if math.isinf(f) or math.isnan(f):
        raise InvalidDescriptor(f"number {n!r} cannot be normalised")
    if f == int(f) and abs(f) < 1e21:
        return str(int(f))
    a = abs(f)
    if 1e-6 <= a < 1e21:
        return format(Decimal(repr(f)), "f")
    text = repr(f)
    mant, exp = text.split("e")
    sign = exp[0] if exp[0] in "+-" else "+"
    digits = exp.lstrip("+-").lstrip("0") or "0"
    return f"{mant}e{sign}{digits}"


def _entries_json(value: Any) -> str:
    if value is None or value is _NULL:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_number(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: kv[0])
        return "[" + ",".join("{" + _go_string(k) + ":" + _entries_json(v) + "}" for k, v in items) + "]"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_entries_json(v) for v in value) + "]"
    raise InvalidDescriptor(f"value of type {type(value).__name__} cannot be normalised")


def _jcs(value: Any) -> bytes:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidDescriptor(f"descriptor cannot be canonicalised (RFC 8785): {exc}") from None


# --- public API ----------------------------------------------------------------------------------


def _as_mapping(descriptor: Mapping[str, Any] | ComponentDescriptor) -> Mapping[str, Any]:
    if isinstance(descriptor, ComponentDescriptor):
        return descriptor.to_dict()
    return descriptor


def _v1(data: Mapping[str, Any], enforce_null: bool) -> bytes:
    proj = copy.deepcopy(_project(data))
    _legacy_identity_defaulting(proj["component"]["resources"])
    doc = {"component": _component_for_v1(proj["component"], enforce_null=enforce_null), "meta": proj["meta"]}
    return _entries_json(doc).encode("utf-8")


def _v2(data: Mapping[str, Any]) -> bytes:
    proj = copy.deepcopy(_project(data))
    _legacy_identity_defaulting(proj["component"]["resources"])
    return _jcs({"component": _component_for_v2(proj["component"])})


def _v3(data: Mapping[str, Any]) -> bytes:
    proj = copy.deepcopy(_project(data))
    return _jcs({"component": _component_for_v2(proj["component"])})


_NORMALISERS: dict[str, Callable[[Mapping[str, Any]], bytes]] = {
    JSON_V1: lambda d: _v1(d, enforce_null=True),
    JSON_V2: _v2,
    JSON_V3: _v3,
    JSON_V4ALPHA1: _v3,
}

_LEGACY_NORMALISERS: dict[LegacyForm, Callable[[Mapping[str, Any]], bytes]] = {
    LEGACY_V1_NO_NULL_EXTRA_IDENTITY: lambda d: _v1(d, enforce_null=False),
}


def check_algorithm(algorithm: str) -> str:
    if algorithm not in _NORMALISERS:
        raise UnknownNormalisation(f"unknown normalisation algorithm {algorithm!r}; supported: {', '.join(ALGORITHMS)}")
    return algorithm


def normalise(
    descriptor: Mapping[str, Any] | ComponentDescriptor,
    algorithm: str = DEFAULT_ALGORITHM,
    *,
    form: LegacyForm | None = None,
) -> bytes:
    """The exact bytes OCM hashes for ``descriptor`` under ``algorithm`` (or an earlier ``form`` of it)."""
    data = _as_mapping(descriptor)
    if form is not None:
        return _LEGACY_NORMALISERS[form](data)
    return _NORMALISERS[check_algorithm(algorithm)](data)


def descriptor_digest(
    descriptor: Mapping[str, Any] | ComponentDescriptor,
    algorithm: str = DEFAULT_ALGORITHM,
    *,
    form: LegacyForm | None = None,
) -> str:
    """Hex SHA-256 of the normalised descriptor: the value a signature's ``digest`` holds."""
    return hashlib.sha256(normalise(descriptor, algorithm, form=form)).hexdigest()
