"""CustomResourceDefinitions: creating one (``apiextensions.k8s.io/v1``) makes its kind servable.

What kube-apiserver's apiextensions part does, and what this mirrors: every served version of the
CRD becomes a kind with the CRD's scope, names (short names, categories), status subresource and
printer columns; objects of it are decoded (unknown fields pruned unless
``x-kubernetes-preserve-unknown-fields``, non-nullable nulls dropped, defaults applied), then validated
against the structural ``openAPIV3Schema`` and its CEL rules (with ``oldSelf`` on update) and answered
422 ``Invalid`` with one cause per field. Deleting the CRD stops serving the kind and drops its objects.

Pruned fields are reported per request as kube does (``fieldValidation``: ``Strict`` answers 400,
``Warn``, the default, sends ``Warning`` headers, ``Ignore`` is silent): see :data:`FIELD_VALIDATION`.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from landscape.kubeapi import cel, errors, schema
from landscape.kubeapi.kinds import AdmissionRequest, Kind

if TYPE_CHECKING:
    from landscape.kubeapi.store import Event, Store

GROUP = "apiextensions.k8s.io"
VERSION = "v1"

#: The request's ``fieldValidation`` (Strict, Warn or Ignore); controllers run outside a request: Ignore.
FIELD_VALIDATION: contextvars.ContextVar[str] = contextvars.ContextVar("field_validation", default="Ignore")
#: Warnings collected for the current request (answered as ``Warning: 299 - "..."`` headers).
WARNINGS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("warnings", default=None)

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def crd_kind() -> Kind:
    return Kind(
        GROUP,
        VERSION,
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short_names=("crd", "crds"),
        merge_keys={},
        validate=[validate_crd],
        admit=[accept_crd],
    )


def event_kinds() -> list[Kind]:
    """core/v1 Events, so controllers can record them and ``kubectl describe`` can show them."""
    return [Kind("", "v1", "Event", "events", status_subresource=False, merge_keys={}, short_names=("ev",))]


# --- the CRD object itself ------------------------------------------------------------------------


def _invalid(req: AdmissionRequest, causes: list[schema.Cause]) -> errors.ApiError:
    return errors.invalid(req.kind.kind, req.kind.group, req.name, causes)


def validate_crd(req: AdmissionRequest) -> None:
    if req.operation == "DELETE" or req.subresource or req.new is None:
        return
    spec = req.new.get("spec") or {}
    names = spec.get("names") or {}
    causes: list[schema.Cause] = []
    for path, value in (
        ("spec.group", spec.get("group")),
        ("spec.names.plural", names.get("plural")),
        ("spec.names.kind", names.get("kind")),
    ):
        if not value:
            causes.append((path, "FieldValueRequired", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            (
                "spec.scope",
                "FieldValueNotSupported",
                f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
            )
        )
    want = f"{names.get('plural')}.{spec.get('group')}"
    if req.name != want:
        causes.append(
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{req.name}": must be spec.names.plural+"."+spec.group',
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            (
                "spec.versions",
                "FieldValueInvalid",
                "Invalid value: []: must have exactly one version marked as storage version",
            )
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            (
                "spec.versions",
                "FieldValueInvalid",
                'Invalid value: "array": must have exactly one version marked as storage version',
            )
        )
    for i, v in enumerate(versions):
        s = (v.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(s, dict):
            causes.append(
                (
                    f"spec.versions[{i}].schema.openAPIV3Schema",
                    "FieldValueRequired",
                    "Required value: schemas are required",
                )
            )
    if req.old is not None and (req.old.get("spec") or {}).get("scope") != spec.get("scope"):
        causes.append(("spec.scope", "FieldValueInvalid", "Invalid value: field is immutable"))
    if causes:
        raise _invalid(req, causes)


def accept_crd(req: AdmissionRequest) -> None:
    """Report names accepted and the CRD established (kube-apiserver does this moments later)."""
    if req.operation == "DELETE" or req.new is None:
        return
    spec = req.new.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    now = req.store.clock()
    req.new["status"] = {
        "acceptedNames": names,
        "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
    }


# --- serving the kinds ----------------------------------------------------------------------------


def kinds_of(crd: dict[str, Any]) -> list[Kind]:
    """One kind per served version of a CRD, with its hooks."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        s = (v.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}
        kind = Kind(
            spec["group"],
            v["name"],
            names["kind"],
            names["plural"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            short_names=tuple(names.get("shortNames") or ()),
            status_subresource="status" in (v.get("subresources") or {}),
            merge_keys=None,
            schema=s,
            columns=list(v.get("additionalPrinterColumns") or []),
            categories=tuple(names.get("categories") or ()),
            crd=crd["metadata"]["name"],
        )
        kind.decode = [_decoder(kind)]
        kind.validate = [validate_object]
        out.append(kind)
    return out


def _decoder(kind: Kind) -> Any:
    def decode(obj: dict[str, Any]) -> None:
        s = kind.schema or {}
        normalised = schema.normalise_numbers(obj)
        obj.clear()
        obj.update(normalised)
        dropped = schema.prune(obj, s)
        if dropped:
            mode = FIELD_VALIDATION.get()
            if mode == "Strict":
                listed = ", ".join(f'unknown field "{d}"' for d in dropped)
                raise errors.ApiError(400, f"strict decoding error: {listed}")
            warnings = WARNINGS.get()
            if mode == "Warn" and warnings is not None:
                warnings.extend(f'unknown field "{d}"' for d in dropped)
        schema.default(obj, s)

    return decode


def validate_object(req: AdmissionRequest) -> None:
    """Schema, metadata and CEL checks of a custom resource (on create, update and status update)."""
    if req.operation == "DELETE" or req.new is None:
        return
    s = req.kind.schema or {}
    obj = req.new
    causes = _metadata_causes(obj.get("metadata") or {}, req.kind.namespaced)
    body = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    causes += schema.validate(
        body,
        {
            **s,
            "properties": {
                k: v for k, v in (s.get("properties") or {}).items() if k not in ("metadata", "apiVersion", "kind")
            },
        },
        "",
    )
    if not causes and cel.has_rules(s):
        old = None
        if req.old is not None:
            old = {k: v for k, v in req.old.items() if k not in ("apiVersion", "kind")}
        causes += cel.validate({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}, old, _without_meta(s))
    if causes:
        raise _invalid(req, causes)


def _without_meta(s: schema.Schema) -> schema.Schema:
    props = {k: v for k, v in (s.get("properties") or {}).items() if k not in ("apiVersion", "kind")}
    return {**s, "properties": props}


def _metadata_causes(meta: dict[str, Any], namespaced: bool) -> list[schema.Cause]:
    causes: list[schema.Cause] = []
    name = str(meta.get("name", ""))
    if name and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name)):
        causes.append(
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        )
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        ref = ref if isinstance(ref, dict) else {}
        for key in ("apiVersion", "kind", "name"):
            if not ref.get(key):
                causes.append(
                    (
                        f"metadata.ownerReferences[{i}].{key}",
                        "FieldValueInvalid",
                        f'Invalid value: "": {key} must not be empty',
                    )
                )
        if not ref.get("uid"):
            causes.append(
                (f"metadata.ownerReferences[{i}].uid", "FieldValueInvalid", 'Invalid value: "": uid must not be empty')
            )
    for key, value in (meta.get("labels") or {}).items():
        plain = str(key).rsplit("/", 1)[-1]
        if not _LABEL_NAME.match(plain) or len(plain) > 63:
            causes.append(
                (
                    "metadata.labels",
                    "FieldValueInvalid",
                    f"Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
        if value is not None and (
            not isinstance(value, str) or (value and not _LABEL_NAME.match(value)) or len(value) > 63
        ):
            causes.append(
                (
                    "metadata.labels",
                    "FieldValueInvalid",
                    f'Invalid value: "{value}": a valid label must be an empty string or consist of '
                    "alphanumeric characters, '-', '_' or '.'",
                )
            )
    return causes


class CrdServer:
    """Keeps the registry in step with the stored CRDs (a store listener)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.kind = store.registry.register(crd_kind())
        for k in event_kinds():
            store.registry.register(k)
        store.listeners.append(self.on_event)

    def on_event(self, ev: Event) -> None:
        if ev.kind is not self.kind:
            return
        registry = self.store.registry
        if ev.type == "DELETED":
            for kind in [k for k in registry.all() if k.crd == ev.obj["metadata"]["name"]]:
                registry.unregister(kind.key())
                for key in [key for key in self.store.objects if key[0] == kind.key()]:
                    self.store.objects.pop(key, None)
            return
        for kind in kinds_of(ev.obj):
            existing = registry.get(*kind.key())
            if existing is None:
                registry.register(kind)
                continue
            # Update in place: open watches hold the Kind object.
            for attr in (
                "kind",
                "namespaced",
                "singular",
                "short_names",
                "status_subresource",
                "merge_keys",
                "schema",
                "columns",
                "categories",
                "crd",
                "decode",
                "validate",
            ):
                setattr(existing, attr, getattr(kind, attr))
            existing.admit = []

    def load(self, paths: Iterable[str | Path]) -> list[str]:
        """Create (or replace) the CRDs in these YAML files or folders; returns their names."""
        names = []
        for path in _files(paths):
            for doc in _crd_docs(path):
                name = doc["metadata"]["name"]
                old = self.store.peek(self.kind, None, name)
                if old is None:
                    self.store.create(self.kind, None, doc, manager="landscape")
                else:
                    self.store.update(
                        self.kind,
                        None,
                        name,
                        {**doc, "metadata": {**doc["metadata"], "resourceVersion": old["metadata"]["resourceVersion"]}},
                        manager="landscape",
                    )
                names.append(name)
        return names


def _crd_docs(path: Path) -> Iterable[dict[str, Any]]:
    """The CRDs of a YAML file: its documents, and the items of ``kind: List`` documents."""
    for doc in yaml.safe_load_all(path.read_text()):
        if not isinstance(doc, dict):
            continue
        for item in doc.get("items") or [] if doc.get("kind") == "List" else [doc]:
            if isinstance(item, dict) and item.get("kind") == "CustomResourceDefinition":
                yield item


def _files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(f for f in path.iterdir() if f.suffix in (".yaml", ".yml"))
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"no CRD file or folder at {path}")
    return out
