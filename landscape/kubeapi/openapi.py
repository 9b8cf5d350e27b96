"""``/openapi/v2`` and ``/openapi/v3``: the schemas of served kinds, for ``kubectl explain`` and
client-side validation.

As kube-apiserver publishes them: one definition per kind, named by the reversed group
(``cloud.konfidence.v1alpha1.Stage``), tagged ``x-kubernetes-group-version-kind``, with ``metadata``
pointing at ObjectMeta; v3 is discovered through ``/openapi/v3`` (``paths`` -> ``serverRelativeURL``)
and served per group-version at ``/openapi/v3/apis/GROUP/VERSION`` (``/openapi/v3/api/v1`` for core).
Built-in kinds without a schema are published as open objects.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from landscape.kubeapi.kinds import Kind, KindRegistry

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "ObjectMeta is metadata that all persisted resources must have.",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer", "format": "int64"},
        "creationTimestamp": {"type": "string", "format": "date-time"},
        "deletionTimestamp": {"type": "string", "format": "date-time"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "managedFields": {"type": "array", "items": {"type": "object"}},
    },
}


def definition_name(kind: Kind) -> str:
    group = ".".join(reversed(kind.group.split("."))) if kind.group else "io.k8s.api.core"
    return f"{group}.{kind.version}.{kind.kind}"


def _definition(kind: Kind, ref_prefix: str, v2: bool) -> dict[str, Any]:
    s: dict[str, Any] = (
        copy.deepcopy(kind.schema) if kind.schema else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    )
    if v2:
        _strip_v3(s)
    props = s.setdefault("properties", {})
    props["metadata"] = (
        {"$ref": f"{ref_prefix}{OBJECT_META}"}
        if v2
        else {"allOf": [{"$ref": f"{ref_prefix}{OBJECT_META}"}], "default": {}}
    )
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    s["x-kubernetes-group-version-kind"] = [{"group": kind.group, "kind": kind.kind, "version": kind.version}]
    return s


def _strip_v3(node: Any) -> None:
    """Swagger 2.0 has no ``nullable`` nor ``anyOf``/``oneOf``; kube drops them from the v2 document."""
    if isinstance(node, dict):
        for key in ("nullable", "anyOf", "oneOf", "not"):
            node.pop(key, None)
        for v in node.values():
            _strip_v3(v)
    elif isinstance(node, list):
        for v in node:
            _strip_v3(v)


def _paths(kind: Kind) -> dict[str, Any]:
    prefix = f"/apis/{kind.group}/{kind.version}" if kind.group else "/api/v1"
    base = f"{prefix}/namespaces/{{namespace}}/{kind.plural}" if kind.namespaced else f"{prefix}/{kind.plural}"
    gvk = {"group": kind.group, "version": kind.version, "kind": kind.kind}

    def op(verb: str) -> dict[str, Any]:
        # Writes list the query parameters kubectl looks for: with fieldValidation there it validates on
        # the server (Strict) instead of fetching the protobuf OpenAPI for client-side validation.
        writes = verb not in ("get", "list", "delete")
        names = ("dryRun", "fieldManager", "fieldValidation") if writes else ()
        return {
            "operationId": f"{verb}{kind.kind}",
            "x-kubernetes-action": verb,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [{"name": n, "in": "query", "type": "string", "schema": {"type": "string"}} for n in names],
            "responses": {"200": {"description": "OK"}},
        }

    paths = {
        base: {"get": op("list"), "post": op("post")},
        f"{base}/{{name}}": {"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")},
    }
    if kind.status_subresource:
        paths[f"{base}/{{name}}/status"] = {"get": op("get"), "put": op("put"), "patch": op("patch")}
    return paths


def _schemas_and_paths(kinds: Iterable[Kind], ref_prefix: str, v2: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """One OpenAPI document's object schemas (ObjectMeta's first; references start with
    ``ref_prefix``) and paths, for ``kinds``."""
    schemas: dict[str, Any] = {OBJECT_META: _META_SCHEMA}
    paths: dict[str, Any] = {}
    for kind in kinds:
        schemas[definition_name(kind)] = _definition(kind, ref_prefix, v2=v2)
        paths.update(_paths(kind))
    return schemas, paths


def v2(registry: KindRegistry) -> dict[str, Any]:
    definitions, paths = _schemas_and_paths(registry.all(), "#/definitions/", v2=True)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0"},
        "paths": paths,
        "definitions": definitions,
    }


def _gv_path(kind: Kind) -> str:
    return f"apis/{kind.group}/{kind.version}" if kind.group else "api/v1"


def v3_document(registry: KindRegistry, gv_path: str) -> dict[str, Any] | None:
    kinds = [k for k in registry.all() if _gv_path(k) == gv_path]
    if not kinds:
        return None
    schemas, paths = _schemas_and_paths(kinds, "#/components/schemas/", v2=False)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def v3_root(registry: KindRegistry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for gv in sorted({_gv_path(k) for k in registry.all()}):
        doc = v3_document(registry, gv)
        digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:128].upper()
        out[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
    return {"paths": out}
